#include "stage/layout.hpp"

#include <algorithm>

namespace tensorinit::stage {

ArenaLayout layout_arena(const format::ModelIndex& index) {
  ArenaLayout layout;
  layout.offsets.reserve(index.tensors.size());
  uint64_t cursor = 0;
  for (const auto& t : index.tensors) {
    cursor = (cursor + kTensorAlign - 1) / kTensorAlign * kTensorAlign;
    layout.offsets.push_back(cursor);
    cursor += t.bytes;
  }
  layout.bytes = (cursor + kTensorAlign - 1) / kTensorAlign * kTensorAlign;
  return layout;
}

ReadPlan plan_reads(const format::ModelIndex& index, const ArenaLayout& layout, uint64_t chunk_size) {
  ReadPlan plan;
  // Tensors of a file, in offset order (the index keeps file order, then offset order).
  size_t t = 0;
  while (t < index.tensors.size()) {
    const uint32_t file = index.tensors[t].file;
    size_t end_t = t;
    while (end_t < index.tensors.size() && index.tensors[end_t].file == file) ++end_t;
    const uint64_t begin = index.tensors[t].file_offset;
    const uint64_t end = index.tensors[end_t - 1].file_offset + index.tensors[end_t - 1].bytes;
    size_t cur = t;
    for (uint64_t at = begin; at < end;) {
      const uint64_t next = std::min(end, (at / chunk_size + 1) * chunk_size);
      Chunk chunk{.file = file, .offset = at, .len = next - at,
                  .first_piece = static_cast<uint32_t>(plan.pieces.size())};
      while (cur < end_t && index.tensors[cur].file_offset + index.tensors[cur].bytes <= at) ++cur;
      for (size_t k = cur; k < end_t && index.tensors[k].file_offset < next; ++k) {
        const auto& tensor = index.tensors[k];
        const uint64_t lo = std::max(at, tensor.file_offset);
        const uint64_t hi = std::min(next, tensor.file_offset + tensor.bytes);
        if (hi <= lo) continue;
        plan.pieces.push_back({lo, layout.offsets[k] + (lo - tensor.file_offset), hi - lo});
        plan.bytes += hi - lo;
      }
      chunk.piece_count = static_cast<uint32_t>(plan.pieces.size()) - chunk.first_piece;
      plan.chunks.push_back(chunk);
      at = next;
    }
    t = end_t;
  }
  return plan;
}

}  // namespace tensorinit::stage
