#include "format/model_files.hpp"

#include <algorithm>
#include <filesystem>
#include <fmt/format.h>
#include <span>

#include "format/formats.hpp"
#include "format/shard_index.hpp"
#include "io/file_source.hpp"
#include "util/name_table.hpp"

namespace tensorinit::format {
namespace {

namespace fs = std::filesystem;

Result<ShardIndex> read_shard_index(const fs::path& file) {
  // Opened once and checked through its descriptor (io::FileSource: O_NONBLOCK, a regular file).
  // A check by path then an open by path let a FIFO put under the name in between hold the start
  // in open, every signal blocked (test_attack9_index_fifo.sh).
  auto source = io::FileSource::open(file.string());
  if (!source)
    return fail(source.error().code == Code::denied ? Code::denied : Code::bad_data, source.error().message);
  const uint64_t size = (*source)->size();
  if (size > kMaxShardIndexBytes)
    return fail(Code::bad_data, fmt::format("{}: {} bytes, too large for a shard index", file.string(), size));
  std::string text(size, '\0');
  if (auto ok = (*source)->read_at(0, std::as_writable_bytes(std::span(text))); !ok) return std::unexpected(ok.error());
  return parse_shard_index(text, file.string());
}

// Opens `path`, picks its format (format_of_file) and indexes it into `model`.
Status add_file(ModelIndex& model, const std::string& path, Format requested, std::stop_token stop = {}) {
  if (stop.stop_requested()) return fail(Code::stopped, "indexing stopped");
  auto source = io::FileSource::open(path);
  if (!source) {
    auto e = source.error();
    if (e.code == Code::no_source) e.message = fmt::format("incomplete: {} is absent", path);
    return std::unexpected(e);
  }
  auto format = format_of_file(path, requested, source->get());
  if (!format) return std::unexpected(format.error());
  const io::FileSource& bytes = **source;
  WeightFile file{.path = path, .size = bytes.size(), .source = std::move(*source)};
  return add_weight_file(model, bytes, std::move(file), *format, stop);
}

// A shard named in the index, or its packed copy (`NAME.zst`, as `tensorinit pack` names it) when
// the manifest says packed or only the packed copy is there.
std::string shard_path(const fs::path& dir, const std::string& shard, Format format) {
  const std::string plain = (dir / shard).string();
  const std::string_view packed_ext = format_info(Format::packed).extension;
  if (shard.ends_with(packed_ext) || format == Format::safetensors || format == Format::tensorizer) return plain;
  const std::string packed = plain + std::string(packed_ext);
  std::error_code ec;
  if (format == Format::packed || (!fs::exists(plain, ec) && fs::exists(packed, ec))) return packed;
  return plain;
}

Status check_unique_names(const ModelIndex& model, const std::string& dir) {
  // One safetensors file (plain or packed): its reader has rejected repeated names already.
  if (model.files.size() == 1 && model.format != Format::tensorizer) return {};
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

Result<ModelIndex> index_directory(const fs::path& dir, Format format, std::stop_token stop) {
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
      if (auto ok = add_file(model, shard_path(dir, shard, format), format, stop); !ok) return std::unexpected(ok.error());
    if (auto ok = check_against_index(model, *index, index_path.string()); !ok) return std::unexpected(ok.error());
    return model;
  }
  // The files of the format asked for, else (format: auto) of the first format in the table's
  // order that has any: *.safetensors, else *.tensors, else *.zst.
  std::vector<std::string> files;
  for (const FormatInfo& f : formats()) {
    if (format != Format::automatic && format != f.format) continue;
    auto listed = list_files(dir, f.extension);
    if (!listed) return std::unexpected(listed.error());
    files = std::move(*listed);
    if (!files.empty()) break;
  }
  if (files.empty()) {
    // Missing rather than malformed: an empty cache directory or an unpopulated volume is a
    // candidate to skip, not bad data.
    return fail(Code::no_source, fmt::format("missing: {} holds no *{} files", dir.string(), format_info(format).extension));
  }
  std::sort(files.begin(), files.end());
  for (const auto& f : files)
    if (auto ok = add_file(model, f, format, stop); !ok) return std::unexpected(ok.error());
  if (auto ok = check_unique_names(model, dir.string()); !ok) return std::unexpected(ok.error());
  return model;
}

}  // namespace

Result<ModelIndex> index_local_model(const std::string& path, Format format, std::stop_token stop) {
  std::error_code ec;
  auto status = fs::status(path, ec);
  if (ec || !fs::exists(status)) {
    if (ec && ec != std::errc::no_such_file_or_directory) return std::unexpected(unreadable(path, ec));
    return fail(Code::no_source, fmt::format("missing: {} does not exist", path));
  }
  if (fs::is_directory(status)) return index_directory(path, format, stop);
  ModelIndex model;
  model.dir = fs::path(path).parent_path().string();
  if (model.dir.empty()) model.dir = ".";
  if (auto ok = add_file(model, path, format, stop); !ok) return std::unexpected(ok.error());
  return model;
}

Result<ModelIndex> index_model_files(const std::string& dir, const std::vector<std::string>& names, Format format) {
  ModelIndex model;
  model.dir = dir;
  for (const auto& name : names)
    if (auto ok = add_file(model, dir + "/" + name, format); !ok) return std::unexpected(ok.error());
  if (auto ok = check_unique_names(model, dir); !ok) return std::unexpected(ok.error());
  return model;
}

}  // namespace tensorinit::format
