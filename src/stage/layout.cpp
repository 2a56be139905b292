#include "stage/layout.hpp"

#include <algorithm>
#include <cstdint>

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
  // A piece per tensor, and one more per chunk boundary inside a tensor: room for all, made once.
  plan.pieces.reserve(index.tensors.size() + layout.bytes / chunk_size + index.files.size() + 1);
  // Tensors of a file, in offset order (the index keeps file order, then offset order). Meta
  // tensors (zeros) have no bytes in the file: their arena slot stays as created, all zeros.
  size_t t = 0;
  while (t < index.tensors.size()) {
    const uint32_t file = index.tensors[t].file;
    size_t end_t = t;
    uint64_t begin = UINT64_MAX, end = 0;
    for (; end_t < index.tensors.size() && index.tensors[end_t].file == file; ++end_t) {
      const auto& tensor = index.tensors[end_t];
      if (tensor.zeros || tensor.bytes == 0) continue;
      begin = std::min(begin, tensor.file_offset);
      end = std::max(end, tensor.file_offset + tensor.bytes);
    }
    size_t cur = t;
    for (uint64_t at = begin; at < end;) {
      const uint64_t next = std::min(end, (at / chunk_size + 1) * chunk_size);
      Chunk chunk{.file = file, .offset = at, .len = next - at,
                  .first_piece = static_cast<uint32_t>(plan.pieces.size())};
      auto behind = [&](const format::TensorEntry& x) { return x.zeros || x.file_offset + x.bytes <= at; };
      while (cur < end_t && behind(index.tensors[cur])) ++cur;
      for (size_t k = cur; k < end_t; ++k) {
        const auto& tensor = index.tensors[k];
        if (tensor.zeros) continue;
        if (tensor.file_offset >= next) break;
        const uint64_t lo = std::max(at, tensor.file_offset);
        const uint64_t hi = std::min(next, tensor.file_offset + tensor.bytes);
        if (hi <= lo) continue;
        const uint64_t dest = layout.offsets[k] + (lo - tensor.file_offset);
        plan.bytes += hi - lo;
        // Tensors whose sizes are multiples of the alignment lie in the arena as in the file: one
        // piece (in the pipeline, chunks of large pieces are spliced, kernel to kernel).
        Piece* last = plan.pieces.size() > chunk.first_piece ? &plan.pieces.back() : nullptr;
        if (last && last->file_offset + last->len == lo && last->dest_offset + last->len == dest) {
          last->len += hi - lo;
          continue;
        }
        plan.pieces.push_back({lo, dest, hi - lo});
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
