#include "stage/sink.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fmt/format.h>

namespace tensorinit::stage {

Status HostSink::consume(const Chunk& chunk, std::span<const Piece> pieces, const std::byte* bytes) {
  for (const auto& p : pieces) {
    const std::byte* from = bytes + (p.file_offset - chunk.offset);
    for (uint64_t done = 0; done < p.len;) {
      ssize_t n = ::pwrite(fd_, from + done, p.len - done, static_cast<off_t>(p.dest_offset + done));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0)
        return fail(Code::io, fmt::format("{}: write failed: {}", name_, n < 0 ? std::strerror(errno) : "no space"));
      done += static_cast<uint64_t>(n);
    }
  }
  return {};
}

}  // namespace tensorinit::stage
