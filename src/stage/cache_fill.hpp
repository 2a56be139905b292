// The write-through cache (model.cache): remote files copied onto the volume while they are
// staged, so that the next start reads them locally. Crash-safe by construction:
//   - bytes go to "<file>.partial.<pid>.<n>", never to the final name;
//   - the record (io/cache_record.hpp: url, etag, size) is the commit marker: removed before a
//     fill starts, written (atomically, fsynced) only after the data was fsynced and renamed;
//   - a file without a record whose size matches is never trusted (plan/system_environment.cpp, index_cache).
// Replicas sharing the volume: each file has a lock file (flock); the holder fills it and removes
// stale partials of crashed replicas; a replica that finds the lock taken reads from remote
// without writing, so nothing is duplicated or corrupted. Partial names carry a random suffix and
// are created O_EXCL: PIDs repeat across containers (each init is PID 1).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>

#include "io/byte_source.hpp"
#include "io/cache_record.hpp"
#include "io/file_source.hpp"
#include "util/error.hpp"
#include "util/fd.hpp"

namespace tensorinit::stage {

using io::CacheRecord;

// One remote file being written through. write() is thread-safe; commit() and the destructor are
// called by the owner once readers are done.
class CacheFill {
 public:
  // Takes the file's lock without waiting. nullptr (not an error) when another process holds it.
  // Errors (Code::io, Code::denied) mean the cache cannot be written; callers log and go on.
  static Result<std::unique_ptr<CacheFill>> begin(const std::string& final_path, CacheRecord record);
  ~CacheFill();  // not committed: the partial file is removed

  // Copies bytes read from the source at `offset`. A failed write abandons the fill (one warning);
  // the load itself goes on. Thread-safe.
  void write(uint64_t offset, std::span<const std::byte> bytes);

  // Reads what no write covered (headers, gaps between tensors) from `source`, fsyncs, runs
  // `check` on the complete copy (when given: what the load indexed must be what the copy says;
  // a server that ignores If-Match can answer the gap reads from another version), renames to the
  // final name, writes the record. Errors leave no trusted file behind.
  using Check = std::function<Status(const io::ByteSource& copy)>;
  Status commit(const io::ByteSource& source, const Check& check = {});

  const std::string& final_path() const { return final_path_; }
  bool abandoned() const;
  // After a successful commit(): `file` (a FileSource's identity) is the copy this fill wrote,
  // by device and inode (the final name may have been replaced since: another writer, a sync).
  bool wrote(const io::FileIdentity& file) const {
    return committed_ && file.device == committed_file_.device && file.inode == committed_file_.inode;
  }

 private:
  CacheFill(std::string final_path, CacheRecord record, UniqueFd lock, UniqueFd partial, std::string partial_path);
  Status fill_gaps(const io::ByteSource& source);

  std::string final_path_;
  CacheRecord record_;
  UniqueFd lock_;
  UniqueFd partial_;
  std::string partial_path_;
  mutable std::mutex mutex_;
  std::map<uint64_t, uint64_t> covered_;  // start -> end, disjoint, merged
  bool abandoned_ = false;
  bool committed_ = false;
  io::FileIdentity committed_file_;  // device and inode of the partial, renamed to the final name
};

// A remote object read through, each read also written to a CacheFill. Thread-safe as its inner
// source.
class WriteThroughSource : public io::ByteSource {
 public:
  WriteThroughSource(std::shared_ptr<const io::ByteSource> inner, CacheFill& fill)
      : inner_(std::move(inner)), fill_(fill) {}
  uint64_t size() const override { return inner_->size(); }
  Status read_at(uint64_t offset, std::span<std::byte> out) const override;
  const std::string& name() const override { return inner_->name(); }
  uint64_t alignment() const override { return inner_->alignment(); }

 private:
  std::shared_ptr<const io::ByteSource> inner_;
  CacheFill& fill_;
};

}  // namespace tensorinit::stage
