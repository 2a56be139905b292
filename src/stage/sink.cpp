#include "stage/sink.hpp"

#include <cstring>

namespace tensorinit::stage {

Status HostSink::consume(const Chunk& chunk, std::span<const Piece> pieces, const std::byte* bytes) {
  for (const auto& p : pieces) std::memcpy(arena_ + p.dest_offset, bytes + (p.file_offset - chunk.offset), p.len);
  return {};
}

}  // namespace tensorinit::stage
