#include "plan/remote_model.hpp"

#include <fmt/format.h>

#include "format/formats.hpp"
#include "format/shard_index.hpp"
#include "io/http_fetch.hpp"
#include "io/http_source.hpp"
#include "util/log.hpp"
#include "util/redact.hpp"

namespace tensorinit::plan {
namespace {

// The tensors of one opened file, in the format format_of_file picks for its name (`url` is redacted
// and ends with the name).
Status index_file(format::ModelIndex& model, const io::ByteSource& source, const std::string& url,
                  format::Format requested, std::stop_token stop) {
  auto format = format::format_of_file(url, requested, &source);
  if (!format) return std::unexpected(format.error());
  return format::add_weight_file(model, source, format::WeightFile{.path = url, .size = source.size()}, *format, stop);
}

// The one place a manifest remote entry becomes io's config.
io::RemoteConfig remote_config(const manifest::Source& source) {
  return {.url = source.url, .endpoint = source.endpoint, .region = source.region, .path_style = source.path_style,
          .access_key_id = source.access_key_id, .secret_access_key = source.secret_access_key,
          .session_token = source.session_token, .where = source.where};
}

// The source's URL as a redacted prefix ending in '/', without the "?..." that marks a query: the
// redacted name of a file (index paths, cache records) ends with the file's name, as a weight_map
// names it (format/shard_index.cpp compares the last path segment).
std::string redacted_prefix(const manifest::Source& source) {
  std::string prefix = source.url.as_prefix().redacted();
  if (size_t query = prefix.find('?'); query != std::string::npos) prefix.erase(query);
  return prefix;
}

}  // namespace

Result<io::RemoteEndpoint> endpoint_for(const manifest::Source& source) {
  return io::open_endpoint(source.type, remote_config(source));
}

io::RemoteOptions options_for(const manifest::Source& source) {
  io::RemoteOptions options;
  options.retries = source.retries;
  options.stall_timeout = source.stall_timeout;
  options.ca_file = source.ca_file;
  options.connections = source.connections;
  return options;
}

std::string remote_file_url(const manifest::Source& source, const std::string& name) {
  return redacted_prefix(source) + name;
}

unsigned remote_readers(const manifest::Source& source, unsigned usable_cores) {
  return source.connections ? source.connections : std::max(16u, 8 * usable_cores);
}

Result<RemoteModel> open_remote_model(const manifest::Source& source, format::Format format, std::stop_token stop) {
  auto endpoint = endpoint_for(source);
  if (!endpoint) return std::unexpected(endpoint.error());
  const io::RemoteOptions options = options_for(source);
  auto client = io::HttpClient::create(options);
  if (!client) return std::unexpected(client.error());

  RemoteModel model;
  model.index.dir = redacted_prefix(source);
  std::vector<std::string> names = source.files;
  std::optional<format::ShardIndex> shards;
  if (names.empty()) {
    io::HttpRequest request{.url = endpoint->wire_url(format::kShardIndexName)};
    auto fetched = io::fetch_all(**client, request, endpoint->signer.get(), options, format::kMaxShardIndexBytes, stop);
    if (fetched) {
      const std::string index_name = remote_file_url(source, format::kShardIndexName);
      auto parsed = format::parse_shard_index(fetched->body, index_name);
      if (!parsed) return std::unexpected(parsed.error());
      shards = std::move(*parsed);
      names = shards->shards;
      model.shard_index = std::move(fetched->body);
      model.shard_index_url = index_name;
    } else if (fetched.error().code == Code::no_source) {
      names = {std::string(format::format_info(format).default_file)};
    } else {
      return std::unexpected(fetched.error());
    }
  }
  for (const std::string& name : names) {
    io::HttpRequest base{.url = endpoint->wire_url(name)};
    auto opened = io::HttpSource::open(*client, base, endpoint->signer, options, stop);
    if (!opened) {
      auto e = opened.error();
      if (e.code == Code::no_source) e.message = fmt::format("incomplete: {}", e.message);
      return std::unexpected(e);
    }
    std::shared_ptr<const io::HttpSource> file = std::move(*opened);
    const std::string url = remote_file_url(source, name);
    if (auto ok = index_file(model.index, *file, url, format, stop); !ok) return std::unexpected(ok.error());
    const bool pinned = !file->etag().empty() || !file->last_modified().empty();
    if (!pinned)
      log::warn(fmt::format("{}: the server sends neither ETag nor Last-Modified: a change during the load cannot be "
                            "detected (only the size is checked), and the file is not written to model.cache", url));
    model.files.push_back({.name = name, .url = url, .etag = file->etag(), .source = file, .pinned = pinned});
  }
  if (shards) {
    if (auto ok = format::check_against_index(model.index, *shards, remote_file_url(source, format::kShardIndexName)); !ok)
      return std::unexpected(ok.error());
  }
  return model;
}

}  // namespace tensorinit::plan
