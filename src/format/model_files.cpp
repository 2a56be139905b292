#include "format/model_files.hpp"

#include <algorithm>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>
#include <sstream>

#include "format/packed_model.hpp"
#include "format/safetensors.hpp"
#include "format/shard_index.hpp"
#include "format/tensorizer.hpp"
#include "io/file_source.hpp"
#include "util/first_duplicate.hpp"

namespace tensorinit::format {
namespace {

namespace fs = std::filesystem;

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool is_tensorizer(const std::string& path, manifest::Format format) {
  return format == manifest::Format::tensorizer || ends_with(path, ".tensors");
}

Status check_format(const std::string& path, manifest::Format format) {
  using manifest::Format;
  if ((format == Format::safetensors || format == Format::tensorizer) && ends_with(path, ".zst"))
    return fail(Code::bad_data, fmt::format("{}: a packed file, but the manifest says format: {}", path,
                                            manifest::to_string(format)));
  if (format == Format::tensorizer && ends_with(path, ".safetensors"))
    return fail(Code::bad_data, fmt::format("{}: a safetensors file, but the manifest says format: tensorizer", path));
  if (format == Format::safetensors && ends_with(path, ".tensors"))
    return fail(Code::bad_data, fmt::format("{}: a tensorizer file, but the manifest says format: safetensors", path));
  return {};
}

Result<ShardIndex> read_shard_index(const fs::path& file) {
  std::error_code ec;
  if (!fs::is_regular_file(file, ec))
    return fail(Code::bad_data, fmt::format("{}: not a regular file", file.string()));
  if (auto size = fs::file_size(file, ec); !ec && size > kMaxShardIndexBytes)
    return fail(Code::bad_data, fmt::format("{}: {} bytes, too large for a shard index", file.string(), size));
  std::ifstream in(file, std::ios::binary);
  if (!in) return fail(Code::denied, fmt::format("{}: cannot be read", file.string()));
  std::stringstream text;
  text << in.rdbuf();
  return parse_shard_index(text.str(), file.string());
}

Status add_file(ModelIndex& model, const std::string& path, std::stop_token stop = {}) {
  if (stop.stop_requested()) return fail(Code::stopped, "indexing stopped");
  auto source = io::FileSource::open(path);
  if (!source) {
    auto e = source.error();
    if (e.code == Code::no_source) e.message = fmt::format("incomplete: {} is absent", path);
    return std::unexpected(e);
  }
  std::vector<TensorEntry> tensors;
  WeightFile file{.path = path, .size = (*source)->size()};
  if (model.format == "packed" || ends_with(path, ".zst")) {
    auto layout = read_packed_safetensors(**source, file);
    if (!layout) return std::unexpected(layout.error());
    tensors = std::move(layout->tensors);
  } else if (model.format == "tensorizer") {
    auto layout = read_tensorizer(**source);
    if (!layout) return std::unexpected(layout.error());
    tensors = std::move(layout->tensors);
  } else {
    auto layout = read_safetensors(**source, stop);
    if (!layout) return std::unexpected(layout.error());
    tensors = std::move(layout->tensors);
  }
  const auto file_index = static_cast<uint32_t>(model.files.size());
  file.source = std::move(*source);
  model.files.push_back(std::move(file));
  for (auto& t : tensors) {
    t.file = file_index;
    model.tensors.push_back(std::move(t));
  }
  return {};
}

// A shard named in the index, or its packed copy (`NAME.zst`, as `tensorinit pack` names it) when
// the manifest says packed or only the packed copy is there.
std::string shard_path(const fs::path& dir, const std::string& shard, manifest::Format format) {
  const std::string plain = (dir / shard).string();
  if (ends_with(shard, ".zst") || format == manifest::Format::safetensors || format == manifest::Format::tensorizer)
    return plain;
  std::error_code ec;
  if (format == manifest::Format::packed || (!fs::exists(plain, ec) && fs::exists(plain + ".zst", ec)))
    return plain + ".zst";
  return plain;
}

Status check_unique_names(const ModelIndex& model, const std::string& dir) {
  const auto& t = model.tensors;
  if (auto dup = first_duplicate(t.size(), [&](size_t i) -> std::string_view { return t[i].name; }))
    return fail(Code::bad_data, fmt::format("{}: tensor '{}' appears in more than one file", dir, t[*dup].name));
  return {};
}

// What a failed std::filesystem query on an input path means for the planner: permission is
// Code::denied, anything else (a symlink loop, a dangling link, a name too long) makes the
// candidate unusable, Code::no_source. Never an exception: every call here takes an error_code.
Error unreadable(const std::string& path, const std::error_code& ec) {
  const bool denied = ec == std::errc::permission_denied || ec == std::errc::operation_not_permitted;
  return Error{denied ? Code::denied : Code::no_source, fmt::format("unreadable: {}: {}", path, ec.message())};
}

// Every *<extension> in `dir` that is a file (a symlink to one counts). One that cannot be examined
// (a symlink loop, a dangling link) makes the listing fail naming it: the model would be loaded
// without it. Directories of that name are not files and are skipped.
Result<std::vector<std::string>> list_files(const fs::path& dir, std::string_view extension) {
  std::vector<std::string> files;
  std::error_code ec;
  fs::directory_iterator it(dir, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    if (it->path().extension() != extension) continue;
    std::error_code stat_ec;
    const auto status = it->status(stat_ec);
    if (stat_ec) return std::unexpected(unreadable(it->path().string(), stat_ec));
    if (fs::is_regular_file(status)) files.push_back(it->path().string());
  }
  if (ec) return fail(ec == std::errc::permission_denied ? Code::denied : Code::no_source,
                      fmt::format("{}: cannot list: {}", dir.string(), ec.message()));
  return files;
}

Result<ModelIndex> index_directory(const fs::path& dir, manifest::Format format, std::stop_token stop) {
  ModelIndex model;
  model.dir = dir.string();
  const fs::path index_path = dir / kShardIndexName;
  std::error_code ec;
  const bool has_index = fs::exists(index_path, ec);
  if (ec) return std::unexpected(unreadable(index_path.string(), ec));
  if (has_index) {
    auto index = read_shard_index(index_path);
    if (!index) return std::unexpected(index.error());
    for (const auto& shard : index->shards)
      if (auto ok = add_file(model, shard_path(dir, shard, format), stop); !ok) return std::unexpected(ok.error());
    if (std::all_of(model.files.begin(), model.files.end(), [](const WeightFile& f) { return f.packed; }))
      model.format = "packed";
    if (auto ok = check_against_index(model, *index, index_path.string()); !ok) return std::unexpected(ok.error());
    return model;
  }
  // Safetensors files first (unless the manifest says tensorizer); a directory of *.tensors only
  // is a tensorizer model.
  auto listed = list_files(dir, ".safetensors");
  if (listed && (listed->empty() || format == manifest::Format::tensorizer) && format != manifest::Format::safetensors) {
    listed = list_files(dir, ".tensors");
    if (listed && !listed->empty()) model.format = "tensorizer";
  }
  // Packed files (*.zst) when the manifest says so, or when there is nothing else.
  if (listed && (listed->empty() || format == manifest::Format::packed) && format != manifest::Format::safetensors &&
      format != manifest::Format::tensorizer) {
    listed = list_files(dir, ".zst");
    if (listed && !listed->empty()) model.format = "packed";
  }
  if (!listed) return std::unexpected(listed.error());
  std::vector<std::string>& files = *listed;
  if (files.empty()) {
    if (auto ok = check_format(dir.string() + "/", format); !ok) return std::unexpected(ok.error());
    // Missing rather than malformed: an empty cache directory or an unpopulated volume is a
    // candidate to skip, not bad data.
    return fail(Code::no_source, fmt::format("missing: {} holds no {} files", dir.string(),
                                             format == manifest::Format::tensorizer ? "*.tensors"
                                             : format == manifest::Format::packed ? "*.zst"
                                                                                  : "*.safetensors"));
  }
  std::sort(files.begin(), files.end());
  for (const auto& f : files)
    if (auto ok = add_file(model, f, stop); !ok) return std::unexpected(ok.error());
  if (auto ok = check_unique_names(model, dir.string()); !ok) return std::unexpected(ok.error());
  return model;
}

}  // namespace

Result<ModelIndex> index_local_model(const std::string& path, manifest::Format format, std::stop_token stop) {
  std::error_code ec;
  auto status = fs::status(path, ec);
  if (ec || !fs::exists(status)) {
    if (ec && ec != std::errc::no_such_file_or_directory) return std::unexpected(unreadable(path, ec));
    return fail(Code::no_source, fmt::format("missing: {} does not exist", path));
  }
  if (auto ok = check_format(path, format); !ok) return std::unexpected(ok.error());
  if (fs::is_directory(status)) return index_directory(path, format, stop);
  ModelIndex model;
  model.dir = fs::path(path).parent_path().string();
  if (model.dir.empty()) model.dir = ".";
  if (is_tensorizer(path, format)) model.format = "tensorizer";
  else if (is_packed_path(path, format)) model.format = "packed";
  if (auto ok = add_file(model, path, stop); !ok) return std::unexpected(ok.error());
  return model;
}

Result<ModelIndex> index_model_files(const std::string& dir, const std::vector<std::string>& names,
                                     manifest::Format format) {
  ModelIndex model;
  model.dir = dir;
  for (const auto& name : names) {
    const std::string path = dir + "/" + name;
    if (auto ok = check_format(path, format); !ok) return std::unexpected(ok.error());
    if (is_tensorizer(path, format)) model.format = "tensorizer";
    else if (is_packed_path(path, format)) model.format = "packed";
    if (auto ok = add_file(model, path); !ok) return std::unexpected(ok.error());
  }
  if (auto ok = check_unique_names(model, dir); !ok) return std::unexpected(ok.error());
  return model;
}

}  // namespace tensorinit::format
