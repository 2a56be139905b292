#include "format/model_files.hpp"

#include <algorithm>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "format/safetensors.hpp"
#include "format/tensorizer.hpp"
#include "io/file_source.hpp"

namespace tensorinit::format {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kIndexName = "model.safetensors.index.json";

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool is_tensorizer(const std::string& path, manifest::Format format) {
  return format == manifest::Format::tensorizer || ends_with(path, ".tensors");
}

Status check_format(const std::string& path, manifest::Format format) {
  using manifest::Format;
  if (format == Format::packed || ends_with(path, ".zst"))
    return fail(Code::bad_data, fmt::format("{}: packed files are not supported yet", path));
  if (format == Format::tensorizer && ends_with(path, ".safetensors"))
    return fail(Code::bad_data, fmt::format("{}: a safetensors file, but the manifest says format: tensorizer", path));
  if (format == Format::safetensors && ends_with(path, ".tensors"))
    return fail(Code::bad_data, fmt::format("{}: a tensorizer file, but the manifest says format: safetensors", path));
  return {};
}

// A shard must be a file beside the index: no path separators, nothing that names a directory.
bool is_plain_file_name(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos &&
         name.find('\0') == std::string::npos;
}

// The index's weight map: tensor -> shard file name. Also cross-checks total_size later.
struct ShardIndex {
  std::vector<std::string> shards;  // in first-mention order
  std::map<std::string, std::string> weight_map;
  std::optional<uint64_t> total_size;
};

// Real index files are a few hundred KiB; anything near this is not one (and is not read into memory).
constexpr uint64_t kMaxIndexBytes = 100'000'000;

Result<ShardIndex> read_shard_index(const fs::path& file) {
  std::error_code ec;
  if (!fs::is_regular_file(file, ec))
    return fail(Code::bad_data, fmt::format("{}: not a regular file", file.string()));
  if (auto size = fs::file_size(file, ec); !ec && size > kMaxIndexBytes)
    return fail(Code::bad_data, fmt::format("{}: {} bytes, too large for a shard index", file.string(), size));
  std::ifstream in(file, std::ios::binary);
  if (!in) return fail(Code::denied, fmt::format("{}: cannot be read", file.string()));
  std::stringstream text;
  text << in.rdbuf();
  json index;
  try {
    index = json::parse(text.str());
  } catch (const json::exception& e) {
    return fail(Code::bad_data, fmt::format("{}: not valid JSON: {}", file.string(), e.what()));
  }
  auto map = index.is_object() ? index.find("weight_map") : index.end();
  if (map == index.end() || !map->is_object())
    return fail(Code::bad_data, fmt::format("{}: no \"weight_map\" object", file.string()));
  ShardIndex out;
  std::set<std::string> seen;
  for (const auto& [tensor, shard] : map->items()) {
    if (!shard.is_string() || !is_plain_file_name(shard.get<std::string>()))
      return fail(Code::bad_data, fmt::format("{}: weight_map['{}'] is not a file name", file.string(), tensor));
    out.weight_map[tensor] = shard.get<std::string>();
    if (seen.insert(shard.get<std::string>()).second) out.shards.push_back(shard.get<std::string>());
  }
  if (out.weight_map.empty()) return fail(Code::bad_data, fmt::format("{}: the weight_map is empty", file.string()));
  auto meta = index.find("metadata");
  if (meta != index.end() && meta->is_object()) {
    auto total = meta->find("total_size");
    if (total != meta->end() && total->is_number_unsigned()) out.total_size = total->get<uint64_t>();
  }
  return out;
}

Status add_file(ModelIndex& model, const std::string& path) {
  auto source = io::FileSource::open(path);
  if (!source) {
    auto e = source.error();
    if (e.code == Code::no_source) e.message = fmt::format("incomplete: {} is absent", path);
    return std::unexpected(e);
  }
  std::vector<TensorEntry> tensors;
  if (model.format == "tensorizer") {
    auto layout = read_tensorizer(**source);
    if (!layout) return std::unexpected(layout.error());
    tensors = std::move(layout->tensors);
  } else {
    auto layout = read_safetensors(**source);
    if (!layout) return std::unexpected(layout.error());
    tensors = std::move(layout->tensors);
  }
  const auto file_index = static_cast<uint32_t>(model.files.size());
  model.files.push_back({path, (*source)->size()});
  for (auto& t : tensors) {
    t.file = file_index;
    model.tensors.push_back(std::move(t));
  }
  return {};
}

Status check_against_index(const ModelIndex& model, const ShardIndex& index, const std::string& index_path) {
  std::set<std::string> names;
  for (const auto& t : model.tensors) {
    if (!names.insert(t.name).second)
      return fail(Code::bad_data, fmt::format("{}: tensor '{}' appears in more than one shard", index_path, t.name));
    auto it = index.weight_map.find(t.name);
    const std::string shard = fs::path(model.files[t.file].path).filename().string();
    if (it == index.weight_map.end())
      return fail(Code::bad_data, fmt::format("{}: tensor '{}' in {} is not in the weight_map", index_path, t.name, shard));
    if (it->second != shard)
      return fail(Code::bad_data, fmt::format("{}: tensor '{}' is in {} but the weight_map says {}", index_path,
                                              t.name, shard, it->second));
  }
  for (const auto& [tensor, shard] : index.weight_map)
    if (!names.count(tensor))
      return fail(Code::bad_data, fmt::format("{}: tensor '{}' is listed but {} does not hold it", index_path, tensor, shard));
  if (index.total_size && *index.total_size != model.tensor_bytes())
    return fail(Code::bad_data, fmt::format("{}: total_size is {} but the shards hold {} tensor bytes", index_path,
                                            *index.total_size, model.tensor_bytes()));
  return {};
}

Status check_unique_names(const ModelIndex& model, const std::string& dir) {
  std::set<std::string> names;
  for (const auto& t : model.tensors)
    if (!names.insert(t.name).second)
      return fail(Code::bad_data, fmt::format("{}: tensor '{}' appears in more than one file", dir, t.name));
  return {};
}

std::vector<std::string> list_files(const fs::path& dir, std::string_view extension, std::error_code& ec) {
  std::vector<std::string> files;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    if (it->is_regular_file() && it->path().extension() == extension) files.push_back(it->path().string());
  return files;
}

Result<ModelIndex> index_directory(const fs::path& dir, manifest::Format format) {
  ModelIndex model;
  model.dir = dir.string();
  const fs::path index_path = dir / kIndexName;
  std::error_code ec;
  if (fs::exists(index_path, ec)) {
    auto index = read_shard_index(index_path);
    if (!index) return std::unexpected(index.error());
    for (const auto& shard : index->shards)
      if (auto ok = add_file(model, (dir / shard).string()); !ok) return std::unexpected(ok.error());
    if (auto ok = check_against_index(model, *index, index_path.string()); !ok) return std::unexpected(ok.error());
    return model;
  }
  // Safetensors files first (unless the manifest says tensorizer); a directory of *.tensors only
  // is a tensorizer model.
  std::vector<std::string> files = list_files(dir, ".safetensors", ec);
  if (!ec && (files.empty() || format == manifest::Format::tensorizer) && format != manifest::Format::safetensors) {
    files = list_files(dir, ".tensors", ec);
    if (!files.empty()) model.format = "tensorizer";
  }
  if (ec) return fail(Code::denied, fmt::format("{}: cannot list: {}", dir.string(), ec.message()));
  if (files.empty()) {
    if (auto ok = check_format(dir.string() + "/", format); !ok) return std::unexpected(ok.error());
    // Missing rather than malformed: an empty cache directory or an unpopulated volume is a
    // candidate to skip, not bad data.
    return fail(Code::no_source, fmt::format("missing: {} holds no {} files", dir.string(),
                                             format == manifest::Format::tensorizer ? "*.tensors" : "*.safetensors"));
  }
  std::sort(files.begin(), files.end());
  for (const auto& f : files)
    if (auto ok = add_file(model, f); !ok) return std::unexpected(ok.error());
  if (auto ok = check_unique_names(model, dir.string()); !ok) return std::unexpected(ok.error());
  return model;
}

}  // namespace

Result<ModelIndex> index_local_model(const std::string& path, manifest::Format format) {
  std::error_code ec;
  auto status = fs::status(path, ec);
  if (ec || !fs::exists(status)) {
    if (ec && ec != std::errc::no_such_file_or_directory)
      return fail(Code::denied, fmt::format("unreadable: {}: {}", path, ec.message()));
    return fail(Code::no_source, fmt::format("missing: {} does not exist", path));
  }
  if (auto ok = check_format(path, format); !ok) return std::unexpected(ok.error());
  if (fs::is_directory(status)) return index_directory(path, format);
  ModelIndex model;
  model.dir = fs::path(path).parent_path().string();
  if (model.dir.empty()) model.dir = ".";
  if (is_tensorizer(path, format)) model.format = "tensorizer";
  if (auto ok = add_file(model, path); !ok) return std::unexpected(ok.error());
  return model;
}

}  // namespace tensorinit::format
