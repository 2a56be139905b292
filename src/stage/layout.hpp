// Where each tensor goes in the arena, and the chunks the readers pull.
#pragma once

#include <cstdint>
#include <vector>

#include "format/tensor_index.hpp"

namespace tensorinit::stage {

inline constexpr uint64_t kTensorAlign = 256;  // the contract: every arena offset is a multiple

// Arena offsets for index.tensors, in order, each 256-byte aligned; `bytes` is the arena size.
struct ArenaLayout {
  std::vector<uint64_t> offsets;
  uint64_t bytes = 0;
};
ArenaLayout layout_arena(const format::ModelIndex& index);

// A part of one tensor (or of several that lie alike in the file and the arena, merged): file bytes [file_offset, +len) go to arena bytes [dest_offset, +len).
struct Piece {
  uint64_t file_offset = 0;
  uint64_t dest_offset = 0;
  uint64_t len = 0;
};

// One read: file bytes [offset, offset + len), and the pieces it feeds.
struct Chunk {
  uint32_t file = 0;
  uint64_t offset = 0;
  uint64_t len = 0;
  uint32_t first_piece = 0;
  uint32_t piece_count = 0;
};

struct ReadPlan {
  std::vector<Chunk> chunks;
  std::vector<Piece> pieces;
  uint64_t bytes = 0;  // tensor bytes covered
};

// Splits every file's tensor data at multiples of `chunk_size` (a multiple of 4096, so chunk
// starts stay aligned for O_DIRECT). Chunks are ordered file by file, so readers move through
// each file roughly sequentially.
ReadPlan plan_reads(const format::ModelIndex& index, const ArenaLayout& layout, uint64_t chunk_size);

}  // namespace tensorinit::stage
