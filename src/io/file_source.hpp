// A local weight file. Buffered reads by default; with direct I/O, aligned reads bypass the page
// cache (cold files read faster and do not evict the server's memory).
#pragma once

#include <memory>
#include <string>

#include "io/byte_source.hpp"
#include "util/fd.hpp"
#include "util/mapping.hpp"

namespace tensorinit::io {

inline constexpr uint64_t kDirectAlign = 4096;

// Which file, and which version of it: what fstat said when the file was opened. A rewrite in
// place changes mtime and ctime (the kernel here, 6.18, gives a changed file a fine-grained
// timestamp once its old one was read by fstat, so two changes in one clock tick still differ);
// a rename over the path changes device/inode.
struct FileIdentity {
  uint64_t device = 0;
  uint64_t inode = 0;
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
  bool operator==(const FileIdentity&) const = default;
};

class FileSource final : public ByteSource {
 public:
  // Opens `path` for buffered reads. Missing: Code::no_source; permission: Code::denied.
  static Result<std::unique_ptr<FileSource>> open(const std::string& path);

  // Also opens an O_DIRECT descriptor on the same file (through /proc/self/fd, else the path with
  // its identity checked). Returns false where the filesystem refuses it (O_DIRECT on tmpfs fails
  // with EINVAL) or the path names another file by now; buffered reads then serve everything.
  // Not thread-safe: call before sharing the source with readers.
  bool enable_direct();
  bool direct() const { return direct_fd_.get() >= 0; }

  uint64_t size() const override { return identity_.size; }
  // What fstat said at open. Thread-safe.
  const FileIdentity& identity() const { return identity_; }

  // The file is the version that was opened: fstat of the descriptor gives the same identity.
  // Otherwise Code::bad_data naming the file and what changed. Thread-safe.
  Status check_unchanged() const;
  // The path still names this file (a server that opens the path reads these bytes): stat of the
  // path gives the same identity. Otherwise Code::bad_data naming the file. Thread-safe.
  Status check_path() const;
  const std::string& name() const override { return path_; }

  uint64_t alignment() const override { return direct() ? kDirectAlign : 1; }

  // Uses the O_DIRECT descriptor when offset, length and buffer are all kDirectAlign-aligned,
  // else the buffered one. Thread-safe (pread).
  Status read_at(uint64_t offset, std::span<std::byte> out) const override;

  // Through the page cache whatever direct() says (the read controller's buffered mode).
  // Thread-safe (pread).
  Status read_buffered(uint64_t offset, std::span<std::byte> out) const;
  // Announces a read of [offset, offset + len) (POSIX_FADV_WILLNEED): the kernel queues the whole
  // range at once instead of growing its readahead window, which readers sharing one descriptor
  // at interleaved offsets keep resetting. A hint: failures are ignored. Thread-safe.
  void will_need(uint64_t offset, uint64_t len) const;
  // The buffered descriptor, for kernel-side copies (splice into the host arena). Thread-safe.
  int buffered_fd() const { return fd_.get(); }

  // [offset, offset + len) mapped read-only, shared and populated (MAP_POPULATE: no fault per
  // page); `at` points at `offset` (the mapping starts at the page below it). The error names the
  // file and the errno: a filesystem that refuses shared mappings (FUSE for files opened with
  // direct I/O: ENODEV), the address space (ENOMEM). Thread-safe.
  struct MappedRange {
    Mapping map;
    const std::byte* at = nullptr;
  };
  Result<MappedRange> map_populated(uint64_t offset, uint64_t len) const;

  // Brings [offset, offset + len) into the page cache without copying it anywhere
  // (MADV_POPULATE_READ on a read-only mapping; a buffered read where the kernel lacks it).
  // Thread-safe.
  Status warm(uint64_t offset, uint64_t len) const;

  // Fraction of the file's pages resident in the page cache (mincore: ~1 ms per GiB).
  double resident_fraction() const;

 private:
  Status read_direct(uint64_t offset, std::span<std::byte> out) const;

  FileSource(std::string path, UniqueFd fd, const FileIdentity& identity)
      : path_(std::move(path)), fd_(std::move(fd)), identity_(identity) {}

  std::string path_;
  UniqueFd fd_;
  UniqueFd direct_fd_;
  FileIdentity identity_;
};

// pread until `out` is full; Code::bad_data if the file ends first, Code::io on an error.
Status pread_fully(int fd, uint64_t offset, std::span<std::byte> out, const std::string& name);

}  // namespace tensorinit::io
