#include "app/remote_cache.hpp"

#include <fmt/format.h>

#include "format/formats.hpp"
#include "format/shard_index.hpp"
#include "io/cache_record.hpp"
#include "io/file_source.hpp"
#include "io/memory_source.hpp"
#include "util/log.hpp"

namespace tensorinit::app {
namespace {

// The file at `path` holds exactly `text` and its record says it came from `url`: already cached.
bool holds(const std::string& path, const std::string& url, const std::string& text) {
  auto record = io::read_cache_record(path);
  if (!record || record->url != url || record->size != text.size()) return false;
  auto file = io::FileSource::open(path);
  if (!file || (*file)->size() != text.size()) return false;
  std::string bytes(text.size(), '\0');
  return (*file)->read_at(0, std::as_writable_bytes(std::span(bytes))) && bytes == text;
}

// The shard index is small and already in memory: written whole, with its record, once every
// shard is in the cache. Another replica may have written it already (left as it is) or be
// writing it now (its lock is taken: left to it).
Status write_shard_index(const std::string& dir, const plan::RemoteModel& remote) {
  const std::string path = fmt::format("{}/{}", dir, format::kShardIndexName);
  const std::string& text = *remote.shard_index;
  if (holds(path, remote.shard_index_url, text)) return {};
  auto fill = stage::CacheFill::begin(path, {.url = remote.shard_index_url, .etag = "", .size = text.size()});
  if (!fill) return std::unexpected(fill.error());
  if (!*fill) return {};  // another replica is writing it
  io::MemorySource bytes(path, text);
  return (*fill)->commit(bytes);
}

// The copy of remote file `i` reads as the tensors the load indexed and staged from it: a server
// that ignores If-Match (or keeps an ETag across versions) can answer the header read that
// completes the copy from another version (test_attack3_cache_header).
Status same_tensors(const plan::RemoteModel& remote, size_t i, const io::ByteSource& copy) {
  const plan::RemoteFile& file = remote.files[i];
  const auto requested = remote.index.files.at(i).packed ? format::Format::packed : remote.index.format;
  const auto format = format::format_of_file(file.name, requested, &copy);
  if (!format) return std::unexpected(format.error());
  format::ModelIndex reread;
  if (auto ok = format::add_weight_file(reread, copy, {.path = file.url, .size = copy.size()}, *format); !ok)
    return fail(Code::bad_data, fmt::format("the copy does not read as the file indexed: {}", ok.error().message));
  std::vector<const format::TensorEntry*> indexed;
  for (const auto& t : remote.index.tensors)
    if (t.file == i) indexed.push_back(&t);
  bool equal = reread.tensors.size() == indexed.size();
  for (size_t t = 0; equal && t < indexed.size(); ++t) {
    format::TensorEntry entry = std::move(reread.tensors[t]);
    entry.file = static_cast<uint32_t>(i);  // the re-index holds this one file only
    equal = entry == *indexed[t];
  }
  if (!equal)
    return fail(Code::bad_data, "its header differs from the one indexed (the server answered from another version "
                                "under the same ETag)");
  return {};
}

}  // namespace

bool RemoteCache::recorded(const plan::RemoteFile& file) const {
  auto record = io::read_cache_record(fmt::format("{}/{}", dir_, file.name));
  return record && record->url == file.url && record->etag == file.etag && record->size == file.source->size();
}

RemoteCache::RemoteCache(std::shared_ptr<const plan::RemoteModel> remote, const std::string& cache_dir)
    : remote_(std::move(remote)), dir_(cache_dir) {
  for (const plan::RemoteFile& file : remote_->files) {
    std::unique_ptr<stage::CacheFill> fill;
    if (!dir_.empty() && file.pinned) {  // an unpinned copy could mix versions: never trusted later
      const std::string path = fmt::format("{}/{}", dir_, file.name);
      auto begun = stage::CacheFill::begin(path, {.url = file.url, .etag = file.etag, .size = file.source->size()});
      if (!begun) log::warn(fmt::format("model.cache: {}; reading {} from remote only", begun.error().message, file.url));
      else if (!*begun) log::info(fmt::format("model.cache: another process is filling {}; reading it from remote", path));
      else fill = std::move(*begun);
    }
    if (fill) sources_.push_back(std::make_shared<stage::WriteThroughSource>(file.source, *fill));
    else sources_.push_back(file.source);
    fills_.push_back(std::move(fill));
  }
}

bool RemoteCache::filling_all() const {
  if (dir_.empty()) return false;
  for (const auto& fill : fills_)
    if (!fill) return false;
  return true;
}

Result<std::vector<std::shared_ptr<const io::FileSource>>> RemoteCache::open_copies() const {
  std::vector<std::shared_ptr<const io::FileSource>> copies;
  for (size_t i = 0; i < remote_->files.size(); ++i) {
    const plan::RemoteFile& file = remote_->files[i];
    auto copy = io::FileSource::open(fmt::format("{}/{}", dir_, file.name));
    if (!copy) return std::unexpected(copy.error());
    // Another replica's copy: its record, read after the open, vouches for what was opened while
    // the path still names it (a refill removes the record before it renames its copy there, and
    // writes the new one after). The size alone let a same-size copy of another version, renamed
    // there since commit() looked, be served with this load's table (test: "remote cache: a copy
    // another replica filled ...").
    const bool same = fills_[i] ? fills_[i]->wrote((*copy)->identity())
                                : (*copy)->size() == file.source->size() && recorded(file) && (*copy)->check_path();
    if (!same)
      return fail(Code::bad_data, fmt::format("{}: replaced right after it was cached (not the copy recorded)",
                                              (*copy)->name()));
    copies.push_back(std::move(*copy));
  }
  return copies;
}

bool RemoteCache::commit() {
  if (dir_.empty()) return false;
  // Our own fills first, every one of them; only then look at the files other replicas filled.
  // Replicas that split the files between them each commit theirs and then check all: whichever
  // commits last sees every record, so the index is written once every shard is recorded,
  // whoever recorded them (checking file by file, in between commits, could let every replica
  // see some other's file unfinished, and none would write the index).
  bool whole = true;
  for (size_t i = 0; i < fills_.size(); ++i) {
    if (!fills_[i]) continue;
    const auto check = [&, i](const io::ByteSource& copy) { return same_tensors(*remote_, i, copy); };
    if (auto ok = fills_[i]->commit(*remote_->files[i].source, check); !ok) {
      log::warn(fmt::format("model.cache: {} not cached: {}", remote_->files[i].url, ok.error().message));
      whole = false;
      failed_ = true;
    }
  }
  for (const plan::RemoteFile& file : remote_->files) whole = whole && recorded(file);
  if (whole && remote_->shard_index) {
    if (auto ok = write_shard_index(dir_, *remote_); !ok) {
      log::warn(fmt::format("model.cache: the shard index was not cached: {}", ok.error().message));
      whole = false;
    }
  }
  return whole;
}

}  // namespace tensorinit::app
