#include "stage/sink.hpp"

#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fmt/format.h>
#include <memory>
#include <vector>

namespace tensorinit::stage {
namespace {

// Linux's IOV_MAX: the most iovecs one pwritev takes.
constexpr size_t kMaxIovecs = 1024;

// Writes all of `iov` (consumed as it goes) at `at`, through short writes and EINTR.
Status write_all(int fd, const std::string& name, std::span<iovec> iov, uint64_t at, const std::string* source) {
  for (size_t k = 0; k < iov.size();) {
    const int count = static_cast<int>(std::min(iov.size() - k, kMaxIovecs));
    ssize_t n = ::pwritev(fd, iov.data() + k, count, static_cast<off_t>(at));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EFAULT && source)
      return fail(Code::bad_data, fmt::format("{}: changed while it was read (a page of its mapping is gone)", *source));
    if (n <= 0) return fail(Code::io, fmt::format("{}: write failed: {}", name, n < 0 ? std::strerror(errno) : "no space"));
    at += static_cast<uint64_t>(n);
    for (; k < iov.size() && static_cast<size_t>(n) >= iov[k].iov_len; ++k) n -= static_cast<ssize_t>(iov[k].iov_len);
    if (k < iov.size()) {
      iov[k].iov_base = static_cast<std::byte*>(iov[k].iov_base) + n;
      iov[k].iov_len -= static_cast<size_t>(n);
    }
  }
  return {};
}

// A run of pieces whose arena slots follow each other with only alignment padding between (zeros
// in a new arena, which no other piece writes) goes out in one pwritev. Pieces under kCopyPiece
// are copied, with the padding, into a gather buffer of kGatherBytes; larger ones are written from
// where they lie. One pwrite per piece cost 100,000 system calls for 100,000 4-byte tensors (0.29 s
// of a 0.30 s stage, measured here); copying every small piece (< 64 KiB) into the gather buffer
// cost a memset and a memcpy of every byte: 12% of the CPU of a 1 GiB load in 100,000 tensors.
constexpr uint64_t kCopyPiece = 4096;
constexpr uint64_t kGatherBytes = 1 << 20;

struct Gather {
  std::unique_ptr<std::byte[]> buffer = std::make_unique_for_overwrite<std::byte[]>(kGatherBytes);
  std::vector<iovec> iov;
  // Adds [from, + len) to the write, merged into the last iovec where it follows it.
  void add(const std::byte* from, uint64_t len) {
    if (!iov.empty() && static_cast<const std::byte*>(iov.back().iov_base) + iov.back().iov_len == from)
      iov.back().iov_len += len;
    else
      iov.push_back({const_cast<std::byte*>(from), len});  // pwritev only reads it
  }
};

// One pipe per thread for splices, closed when the thread ends. Emptied after every use; a failed
// splice leaves bytes in it, so it is replaced then.
struct ThreadPipe {
  int r = -1, w = -1;
  size_t capacity = 0;
  ~ThreadPipe() { reset(); }
  void reset() {
    if (r >= 0) ::close(r);
    if (w >= 0) ::close(w);
    r = w = -1;
  }
  bool open() {
    if (r >= 0) return true;
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return false;
    r = fds[0];
    w = fds[1];
    const int size = ::fcntl(w, F_SETPIPE_SZ, 1 << 20);  // 1 MiB: pipe-max-size's default
    capacity = size > 0 ? static_cast<size_t>(size) : 65536;
    return true;
  }
};
thread_local ThreadPipe t_pipe;

}  // namespace

Status Sink::consume_from(const Chunk&, std::span<const Piece>, int, const std::string&, bool) {
  return fail(Code::internal, "this sink takes no descriptors");
}

Status Sink::consume_mapped(const Chunk&, std::span<const Piece>, const std::byte*, const std::string&, bool) {
  return fail(Code::internal, "this sink takes no mappings");
}

Status HostSink::consume(const Chunk& chunk, std::span<const Piece> pieces, const std::byte* bytes, bool serialised) {
  return write_pieces(chunk, pieces, bytes, kCopyPiece, nullptr, serialised);
}

Status HostSink::consume_mapped(const Chunk& chunk, std::span<const Piece> pieces, const std::byte* mapped,
                                const std::string& name, bool serialised) {
  return write_pieces(chunk, pieces, mapped, 0, &name, serialised);  // nothing copied here: only the kernel reads it
}

Status HostSink::write_pieces(const Chunk& chunk, std::span<const Piece> pieces, const std::byte* bytes,
                              uint64_t copy_below, const std::string* source, bool serialised) {
  thread_local Gather g;
  for (size_t i = 0; i < pieces.size();) {
    g.iov.clear();
    uint64_t used = 0;                         // of the gather buffer
    uint64_t end = pieces[i].dest_offset;      // of the run, in the arena
    size_t j = i;
    for (; j < pieces.size(); ++j) {
      const Piece& p = pieces[j];
      if (p.dest_offset < end || p.dest_offset - end >= kTensorAlign) break;
      const uint64_t pad = p.dest_offset - end;
      const bool copy = p.len < copy_below;
      const uint64_t gathered = pad + (copy ? p.len : 0);
      if (j > i && (used + gathered > kGatherBytes || g.iov.size() + 2 > kMaxIovecs)) break;
      const std::byte* from = bytes + (p.file_offset - chunk.offset);
      if (gathered > 0) {
        std::byte* to = g.buffer.get() + used;
        std::memset(to, 0, pad);
        if (copy) std::memcpy(to + pad, from, p.len);
        g.add(to, gathered);
        used += gathered;
      }
      if (!copy) g.add(from, p.len);
      end = p.dest_offset + p.len;
    }
    const auto lock = turn(serialised);  // one write into the arena at a time (stage/sink.hpp)
    if (auto ok = write_all(fd_, name_, g.iov, pieces[i].dest_offset, source); !ok) return ok;
    i = j;
  }
  return {};
}

bool HostSink::takes_descriptor(int fd) const {
  // The source's filesystem must splice (most do; some FUSE ones do not): one byte, discarded.
  ThreadPipe probe;
  if (!probe.open()) return false;
  loff_t at = 0;
  return ::splice(fd, &at, probe.w, nullptr, 1, 0) >= 0;
}

Status HostSink::consume_from(const Chunk&, std::span<const Piece> pieces, int fd, const std::string& name,
                              bool serialised) {
  if (!t_pipe.open()) return fail(Code::io, fmt::format("{}: pipe: {}", name_, std::strerror(errno)));
  for (const auto& p : pieces) {
    loff_t in = static_cast<loff_t>(p.file_offset), out = static_cast<loff_t>(p.dest_offset);
    for (uint64_t left = p.len; left > 0;) {
      const ssize_t n = ::splice(fd, &in, t_pipe.w, nullptr, std::min<uint64_t>(left, t_pipe.capacity), SPLICE_F_MOVE);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return fail(Code::io, fmt::format("{}: read at offset {}: {}", name, in, std::strerror(errno)));
      if (n == 0)
        return fail(Code::bad_data, fmt::format("{}: file ended at offset {} (expected {} more bytes)", name, in, left));
      const auto lock = turn(serialised);  // the read into the pipe above runs beside other writes
      for (ssize_t moved = 0; moved < n;) {
        const ssize_t m = ::splice(t_pipe.r, nullptr, fd_, &out, static_cast<size_t>(n - moved), SPLICE_F_MOVE);
        if (m < 0 && errno == EINTR) continue;
        if (m <= 0) {
          const int err = errno;
          t_pipe.reset();
          return fail(Code::io, fmt::format("{}: write failed: {}", name_, m < 0 ? std::strerror(err) : "no space"));
        }
        moved += m;
      }
      left -= static_cast<uint64_t>(n);
    }
  }
  return {};
}

}  // namespace tensorinit::stage
