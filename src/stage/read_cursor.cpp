#include "stage/read_cursor.hpp"

#include <algorithm>

namespace tensorinit::stage {

std::optional<ReadCursor::Part> ReadCursor::take(uint64_t request) {
  if (chunk_ >= plan_.chunks.size()) return std::nullopt;
  const Chunk& c = plan_.chunks[chunk_];
  const uint64_t to = request ? std::min(c.len, ((c.offset + at_) / request + 1) * request - c.offset) : c.len;
  const Part part{chunk_, at_, to};
  at_ = to;
  if (at_ >= c.len) {
    ++chunk_;
    at_ = 0;
  }
  return part;
}

std::pair<uint64_t, uint64_t> ReadCursor::announce(const Part& part) {
  const Chunk& c = plan_.chunks[part.chunk];
  if (c.file != announced_file_) announced_ = 0;
  announced_file_ = c.file;
  const uint64_t from = std::max(announced_, c.offset + part.from), to = c.offset + part.to + kAhead;
  if (to < announced_ + kAhead / 4) return {0, 0};
  announced_ = to;
  return {from, to};
}

void clip_pieces(std::span<const Piece> pieces, uint64_t from, uint64_t to, std::vector<Piece>& out) {
  out.clear();
  for (const Piece& p : pieces) {
    const uint64_t lo = std::max(from, p.file_offset), hi = std::min(to, p.file_offset + p.len);
    if (lo < hi) out.push_back({lo, p.dest_offset + (lo - p.file_offset), hi - lo});
  }
}

std::pair<Chunk, std::span<const Piece>> part_of(const ReadPlan& plan, const ReadCursor::Part& part,
                                                 std::vector<Piece>& scratch) {
  Chunk chunk = plan.chunks[part.chunk];
  const auto pieces = std::span(plan.pieces).subspan(chunk.first_piece, chunk.piece_count);
  if (part.from == 0 && part.to == chunk.len) return {chunk, pieces};
  chunk.offset += part.from;
  chunk.len = part.to - part.from;
  clip_pieces(pieces, chunk.offset, chunk.offset + chunk.len, scratch);
  chunk.piece_count = static_cast<uint32_t>(scratch.size());
  return {chunk, scratch};
}

}  // namespace tensorinit::stage
