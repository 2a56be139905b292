#include "stage/sink.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fmt/format.h>
#include <vector>

namespace tensorinit::stage {
namespace {

// Writes all of [from, from + len) at `at`, through short writes and EINTR.
Status write_all(int fd, const std::string& name, const std::byte* from, uint64_t len, uint64_t at) {
  for (uint64_t done = 0; done < len;) {
    ssize_t n = ::pwrite(fd, from + done, len - done, static_cast<off_t>(at + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return fail(Code::io, fmt::format("{}: write failed: {}", name, n < 0 ? std::strerror(errno) : "no space"));
    done += static_cast<uint64_t>(n);
  }
  return {};
}

// Pieces under this size are gathered, with the padding between them, into one write of at most
// kGatherBytes: one pwrite per piece cost 100,000 system calls for 100,000 4-byte tensors (0.29 s of
// a 0.30 s stage, measured here); gathered, the stage takes what the same bytes in 100 tensors take.
constexpr uint64_t kSmallPiece = 64 << 10;
constexpr uint64_t kGatherBytes = 1 << 20;

}  // namespace

Status HostSink::consume(const Chunk& chunk, std::span<const Piece> pieces, const std::byte* bytes) {
  thread_local std::vector<std::byte> gathered;
  for (size_t i = 0; i < pieces.size();) {
    const Piece& first = pieces[i];
    uint64_t span_end = first.dest_offset + first.len;
    size_t j = i + 1;
    // A run: small pieces whose arena slots follow each other with only alignment padding between
    // (the padding is zeros in a new arena, and no other piece writes it).
    while (first.len < kSmallPiece && j < pieces.size() && pieces[j].len < kSmallPiece &&
           pieces[j].dest_offset >= span_end && pieces[j].dest_offset - span_end < kTensorAlign &&
           pieces[j].dest_offset + pieces[j].len - first.dest_offset <= kGatherBytes)
    {
      span_end = pieces[j].dest_offset + pieces[j].len;
      ++j;
    }
    if (j == i + 1) {
      if (auto ok = write_all(fd_, name_, bytes + (first.file_offset - chunk.offset), first.len, first.dest_offset); !ok)
        return ok;
    } else {
      gathered.assign(span_end - first.dest_offset, std::byte{0});
      for (size_t k = i; k < j; ++k)
        std::memcpy(gathered.data() + (pieces[k].dest_offset - first.dest_offset),
                    bytes + (pieces[k].file_offset - chunk.offset), pieces[k].len);
      if (auto ok = write_all(fd_, name_, gathered.data(), gathered.size(), first.dest_offset); !ok) return ok;
    }
    i = j;
  }
  return {};
}

}  // namespace tensorinit::stage
