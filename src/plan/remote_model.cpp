#include "plan/remote_model.hpp"

#include <fmt/format.h>

#include "format/packed_model.hpp"
#include "format/safetensors.hpp"
#include "format/shard_index.hpp"
#include "format/tensorizer.hpp"
#include "io/http_fetch.hpp"
#include "io/http_source.hpp"
#include "io/s3_location.hpp"
#include "io/sigv4.hpp"
#include "util/redact.hpp"

namespace tensorinit::plan {
namespace {

using manifest::SourceType;

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The tensors of one opened file, by its name and the manifest's format.
Status index_file(format::ModelIndex& model, const io::ByteSource& source, const std::string& name,
                  const std::string& url, manifest::Format format) {
  format::WeightFile file{.path = url, .size = source.size()};
  std::vector<format::TensorEntry> tensors;
  if (format == manifest::Format::tensorizer || ends_with(name, ".tensors")) {
    auto layout = format::read_tensorizer(source);
    if (!layout) return std::unexpected(layout.error());
    tensors = std::move(layout->tensors);
    model.format = "tensorizer";
  } else if (format == manifest::Format::packed || ends_with(name, ".zst")) {
    auto layout = format::read_packed_safetensors(source, file);
    if (!layout) return std::unexpected(layout.error());
    tensors = std::move(layout->tensors);
    model.format = "packed";
  } else {
    auto layout = format::read_safetensors(source);
    if (!layout) return std::unexpected(layout.error());
    tensors = std::move(layout->tensors);
  }
  const auto index = static_cast<uint32_t>(model.files.size());
  model.files.push_back(std::move(file));
  for (auto& t : tensors) {
    t.file = index;
    model.tensors.push_back(std::move(t));
  }
  return {};
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

Result<Endpoint> endpoint_for(const manifest::Source& source) {
  Endpoint endpoint;
  if (source.type == SourceType::http) {
    endpoint.http_prefix = source.url;
    return endpoint;
  }
  auto location = io::parse_s3_location(source);
  if (!location) return std::unexpected(location.error());
  auto credentials = io::resolve_credentials(source);
  if (!credentials) return std::unexpected(credentials.error());
  endpoint.signer = std::make_shared<io::SigV4Signer>(std::move(*credentials), io::SigV4Options{.region = location->region});
  endpoint.s3 = std::move(*location);
  return endpoint;
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

Result<RemoteModel> open_remote_model(const manifest::Source& source, manifest::Format format, std::stop_token stop) {
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
      names = {format == manifest::Format::tensorizer ? "model.tensors"
               : format == manifest::Format::packed   ? "model.safetensors.zst"
                                                      : "model.safetensors"};
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
    if (auto ok = index_file(model.index, *file, name, url, format); !ok) return std::unexpected(ok.error());
    model.files.push_back({.name = name, .url = url, .etag = file->etag(), .source = file});
  }
  if (shards) {
    if (auto ok = format::check_against_index(model.index, *shards, remote_file_url(source, format::kShardIndexName)); !ok)
      return std::unexpected(ok.error());
  }
  return model;
}

}  // namespace tensorinit::plan
