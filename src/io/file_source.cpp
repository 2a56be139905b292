#include "io/file_source.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fmt/format.h>
#include <vector>

#include "util/mapping.hpp"
#include "util/open_regular.hpp"

namespace tensorinit::io {
namespace {

Code code_for_errno(int err) {
  switch (err) {
    case ENOENT: case ENOTDIR: return Code::no_source;
    case EACCES: case EPERM: return Code::denied;
    default: return Code::io;
  }
}

bool aligned(uint64_t v) { return v % kDirectAlign == 0; }

FileIdentity identity_of(const struct stat& st) {
  constexpr int64_t kNs = 1'000'000'000;
  return {.device = static_cast<uint64_t>(st.st_dev),
          .inode = static_cast<uint64_t>(st.st_ino),
          .size = static_cast<uint64_t>(st.st_size),
          .mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * kNs + st.st_mtim.tv_nsec,
          .ctime_ns = static_cast<int64_t>(st.st_ctim.tv_sec) * kNs + st.st_ctim.tv_nsec};
}

// What differs between two identities, for messages ("size 100 -> 90 bytes, modified").
std::string what_changed(const FileIdentity& was, const FileIdentity& now) {
  if (was.device != now.device || was.inode != now.inode) return "it is another file now (device/inode differ)";
  std::string out;
  if (was.size != now.size) out = fmt::format("size {} -> {} bytes", was.size, now.size);
  if (was.mtime_ns != now.mtime_ns) out += out.empty() ? "modified" : ", modified";
  else if (was.ctime_ns != now.ctime_ns)
    out += out.empty() ? "status changed: renamed over or unlinked, chmod, or a new link"
                       : ", status changed: renamed over or unlinked, chmod, or a new link";
  return out;
}

}  // namespace

Status pread_fully(int fd, uint64_t offset, std::span<std::byte> out, const std::string& name) {
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = ::pread(fd, out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail(code_for_errno(errno), fmt::format("{}: read at offset {}: {}", name, offset + done, std::strerror(errno)));
    }
    if (n == 0)
      return fail(Code::bad_data, fmt::format("{}: file ended at offset {} (expected {} more bytes)", name,
                                              offset + done, out.size() - done));
    done += static_cast<size_t>(n);
  }
  return {};
}

Result<std::unique_ptr<FileSource>> FileSource::open(const std::string& path) {
  // A FIFO in the model directory cannot hang the open; a lease's holder is waited for
  // (util/open_regular.hpp).
  struct stat st {};
  UniqueFd owned = open_for_reading(path, st);
  if (!owned) return fail(code_for_errno(errno), fmt::format("{}: {}", path, std::strerror(errno)));
  if (!S_ISREG(st.st_mode)) return fail(Code::no_source, fmt::format("{}: not a regular file", path));
  return std::unique_ptr<FileSource>(new FileSource(path, std::move(owned), identity_of(st)));
}

bool FileSource::enable_direct() {
  if (direct()) return true;
  // The file that was opened, not whatever the path names now: /proc/self/fd reopens the inode.
  int fd = ::open(fmt::format("/proc/self/fd/{}", fd_.get()).c_str(), O_RDONLY | O_CLOEXEC | O_DIRECT);
  if (fd < 0 && errno != EINVAL) fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC | O_DIRECT);  // no /proc
  if (fd < 0) return false;  // EINVAL on tmpfs and some FUSE filesystems
  UniqueFd owned(fd);
  struct stat st {};
  if (::fstat(fd, &st) != 0) return false;
  const FileIdentity now = identity_of(st);
  if (now.device != identity_.device || now.inode != identity_.inode) return false;
  direct_fd_ = std::move(owned);
  return true;
}

Status FileSource::check_unchanged() const {
  struct stat st {};
  if (::fstat(fd_.get(), &st) != 0) return fail(Code::io, fmt::format("{}: {}", path_, std::strerror(errno)));
  const FileIdentity now = identity_of(st);
  if (now == identity_) return {};
  return fail(Code::bad_data, fmt::format("{}: changed while it was being read ({})", path_, what_changed(identity_, now)));
}

Status FileSource::check_path() const {
  struct stat st {};
  if (::stat(path_.c_str(), &st) != 0)
    return fail(Code::bad_data, fmt::format("{}: no longer names the file that was read ({})", path_, std::strerror(errno)));
  const FileIdentity now = identity_of(st);
  if (now == identity_) return {};
  return fail(Code::bad_data,
              fmt::format("{}: no longer names the file that was read ({})", path_, what_changed(identity_, now)));
}

Status FileSource::read_direct(uint64_t offset, std::span<std::byte> out) const {
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = ::pread(direct_fd_.get(), out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EINVAL)
      return fail(code_for_errno(errno), fmt::format("{}: read at offset {}: {}", path_, offset + done, std::strerror(errno)));
    // EINVAL: the device wants a larger alignment than ours; a short read leaves an unaligned
    // remainder. Either way the buffered descriptor finishes the job.
    const size_t got = n > 0 ? static_cast<size_t>(n) : 0;
    if (got == 0 || !aligned(got)) return pread_fully(fd_.get(), offset + done + got, out.subspan(done + got), path_);
    done += got;
  }
  return {};
}

Status FileSource::read_at(uint64_t offset, std::span<std::byte> out) const {
  if (direct() && aligned(offset) && aligned(out.size()) &&
      reinterpret_cast<uintptr_t>(out.data()) % kDirectAlign == 0)
    return read_direct(offset, out);
  return pread_fully(fd_.get(), offset, out, path_);
}

Status FileSource::read_buffered(uint64_t offset, std::span<std::byte> out) const {
  return pread_fully(fd_.get(), offset, out, path_);
}

void FileSource::will_need(uint64_t offset, uint64_t len) const {
  ::posix_fadvise(fd_.get(), static_cast<off_t>(offset), static_cast<off_t>(len), POSIX_FADV_WILLNEED);
}

Result<FileSource::MappedRange> FileSource::map_populated(uint64_t offset, uint64_t len) const {
  static const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  const uint64_t lead = offset % page;
  const size_t map_len = static_cast<size_t>(lead + len);
  void* addr = ::mmap(nullptr, map_len, PROT_READ, MAP_SHARED | MAP_POPULATE, fd_.get(),
                      static_cast<off_t>(offset - lead));
  if (addr == MAP_FAILED)
    return fail(code_for_errno(errno),
                fmt::format("{}: cannot map bytes {}-{}: {}", path_, offset, offset + len, std::strerror(errno)));
  MappedRange out{Mapping(addr, map_len), nullptr};
  out.at = out.map.data() + lead;
  return out;
}

Status FileSource::warm(uint64_t offset, uint64_t len) const {
#ifndef MADV_POPULATE_READ
  constexpr int MADV_POPULATE_READ = 22;  // Linux 5.14; glibc 2.36 headers may lack it
#endif
  if (len == 0) return {};
  const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  const uint64_t start = offset / page * page;
  const size_t map_len = static_cast<size_t>(offset + len - start);
  void* addr = ::mmap(nullptr, map_len, PROT_READ, MAP_SHARED, fd_.get(), static_cast<off_t>(start));
  if (addr != MAP_FAILED) {
    Mapping map(addr, map_len);
    if (::madvise(addr, map_len, MADV_POPULATE_READ) == 0) return {};
    if (errno == EIO || errno == EFAULT)
      return fail(Code::io, fmt::format("{}: read at offset {}: {}", path_, offset, std::strerror(errno)));
  }
  // No MADV_POPULATE_READ (EINVAL before 5.14): read through a small buffer instead.
  std::vector<std::byte> buffer(std::min<uint64_t>(len, 1u << 20));
  for (uint64_t done = 0; done < len;) {
    const auto n = std::min<uint64_t>(buffer.size(), len - done);
    if (auto ok = pread_fully(fd_.get(), offset + done, std::span(buffer.data(), n), path_); !ok) return ok;
    done += n;
  }
  return {};
}

double FileSource::resident_fraction() const {
  const uint64_t size = identity_.size;
  if (size == 0) return 1.0;
  void* addr = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd_.get(), 0);
  if (addr == MAP_FAILED) return 0.0;
  Mapping map(addr, size);
  // mincore a window at a time: one byte per page of the whole file would be 256 MiB for 1 TiB.
  const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  constexpr uint64_t kWindowPages = 1u << 16;
  std::vector<unsigned char> vec(static_cast<size_t>(kWindowPages));
  const uint64_t pages = (size + page - 1) / page;
  uint64_t resident = 0;
  for (uint64_t first = 0; first < pages; first += kWindowPages) {
    const uint64_t n = std::min(kWindowPages, pages - first);
    const uint64_t len = std::min(n * page, size - first * page);
    if (::mincore(static_cast<char*>(addr) + first * page, len, vec.data()) != 0) return 0.0;
    for (uint64_t i = 0; i < n; ++i) resident += vec[i] & 1;
  }
  return static_cast<double>(resident) / static_cast<double>(pages);
}

}  // namespace tensorinit::io
