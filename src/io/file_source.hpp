// A local weight file. Buffered reads by default; with direct I/O, aligned reads bypass the page
// cache (cold files read faster and do not evict the server's memory).
#pragma once

#include <memory>
#include <string>

#include "io/byte_source.hpp"
#include "util/fd.hpp"

namespace tensorinit::io {

inline constexpr uint64_t kDirectAlign = 4096;

class FileSource final : public ByteSource {
 public:
  // Opens `path` for buffered reads. Missing: Code::no_source; permission: Code::denied.
  static Result<std::unique_ptr<FileSource>> open(const std::string& path);

  // Also opens an O_DIRECT descriptor. Returns false where the filesystem refuses it
  // (O_DIRECT on tmpfs fails with EINVAL); buffered reads then serve everything.
  bool enable_direct();
  bool direct() const { return direct_fd_.get() >= 0; }

  uint64_t size() const override { return size_; }
  const std::string& name() const override { return path_; }

  uint64_t alignment() const override { return direct() ? kDirectAlign : 1; }

  // Uses the O_DIRECT descriptor when offset, length and buffer are all kDirectAlign-aligned,
  // else the buffered one. Thread-safe (pread).
  Status read_at(uint64_t offset, std::span<std::byte> out) const override;

  // Brings [offset, offset + len) into the page cache without copying it anywhere
  // (MADV_POPULATE_READ on a read-only mapping; a buffered read where the kernel lacks it).
  // Thread-safe.
  Status warm(uint64_t offset, uint64_t len) const;

  // Fraction of the file's pages resident in the page cache (mincore: ~1 ms per GiB).
  double resident_fraction() const;

 private:
  Status read_direct(uint64_t offset, std::span<std::byte> out) const;

  FileSource(std::string path, UniqueFd fd, uint64_t size)
      : path_(std::move(path)), fd_(std::move(fd)), size_(size) {}

  std::string path_;
  UniqueFd fd_;
  UniqueFd direct_fd_;
  uint64_t size_ = 0;
};

// pread until `out` is full; Code::bad_data if the file ends first, Code::io on an error.
Status pread_fully(int fd, uint64_t offset, std::span<std::byte> out, const std::string& name);

}  // namespace tensorinit::io
