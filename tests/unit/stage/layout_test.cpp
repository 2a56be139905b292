// Where tensors go and how files are cut into reads: every arena offset 256-aligned (the
// contract), chunks cut at multiples of the chunk size in the file, every byte of every tensor in
// exactly one piece, meta tensors (zeros) read from nowhere.
#include "stage/layout.hpp"

#include <doctest/doctest.h>

#include <vector>

namespace tensorinit::stage {
namespace {

format::TensorEntry tensor(uint32_t file, uint64_t offset, uint64_t bytes, bool zeros = false) {
  return {.name = "t", .dtype = "U8", .shape = {bytes}, .file = file, .file_offset = offset, .bytes = bytes,
          .zeros = zeros};
}

// Arena bytes [offsets[i], + bytes) filled from the pieces: each must be written exactly once.
void check_pieces_cover_tensors(const format::ModelIndex& index, const ArenaLayout& layout, const ReadPlan& plan) {
  std::vector<int> written(layout.bytes, 0);
  for (const auto& chunk : plan.chunks)
    for (uint32_t p = chunk.first_piece; p < chunk.first_piece + chunk.piece_count; ++p) {
      const Piece& piece = plan.pieces[p];
      CHECK(piece.file_offset >= chunk.offset);
      CHECK(piece.file_offset + piece.len <= chunk.offset + chunk.len);
      for (uint64_t i = 0; i < piece.len; ++i) ++written[piece.dest_offset + i];
    }
  uint64_t bytes = 0;
  for (size_t t = 0; t < index.tensors.size(); ++t) {
    const auto& x = index.tensors[t];
    for (uint64_t i = 0; i < x.bytes; ++i) CHECK(written[layout.offsets[t] + i] == (x.zeros ? 0 : 1));
    if (!x.zeros) bytes += x.bytes;
  }
  CHECK(plan.bytes == bytes);
}

TEST_CASE("layout: every tensor at a multiple of 256, in order; the arena a multiple of 256") {
  format::ModelIndex index;
  index.tensors = {tensor(0, 8, 1), tensor(0, 9, 300), tensor(0, 309, 0), tensor(0, 309, 256), tensor(0, 565, 5)};
  const ArenaLayout layout = layout_arena(index);
  CHECK(layout.offsets == std::vector<uint64_t>{0, 256, 768, 768, 1024});
  CHECK(layout.bytes == 1280);
  CHECK(layout_arena({}).bytes == 0);
}

TEST_CASE("layout: chunks are cut at multiples of the chunk size in each file, file by file") {
  format::ModelIndex index;
  index.files.resize(2);
  // File 0: tensors from 100 to 10100, one of them zeros (tensorizer meta: nothing to read).
  // File 1: one tensor inside the first chunk.
  index.tensors = {tensor(0, 100, 4000), tensor(0, 4100, 3000, true), tensor(0, 7100, 3000), tensor(1, 50, 10)};
  const ArenaLayout layout = layout_arena(index);
  const ReadPlan plan = plan_reads(index, layout, 4096);
  std::vector<std::pair<uint32_t, uint64_t>> starts;
  for (const auto& c : plan.chunks) starts.emplace_back(c.file, c.offset);
  CHECK(starts == std::vector<std::pair<uint32_t, uint64_t>>{{0, 100}, {0, 4096}, {0, 8192}, {1, 50}});
  CHECK(plan.chunks[0].len == 3996);
  CHECK(plan.chunks[2].len == 10100 - 8192);
  CHECK(plan.chunks[3].len == 10);
  check_pieces_cover_tensors(index, layout, plan);
}

TEST_CASE("layout: a tensor larger than many chunks is split, and small ones share a chunk") {
  format::ModelIndex index;
  index.files.resize(1);
  index.tensors = {tensor(0, 24, 5), tensor(0, 29, 70000), tensor(0, 70029, 1), tensor(0, 70030, 7)};
  const ArenaLayout layout = layout_arena(index);
  const ReadPlan plan = plan_reads(index, layout, 16384);
  CHECK(plan.chunks.size() == 5);  // [24, 16384), then 16 KiB each up to 70037
  CHECK(plan.chunks.back().piece_count == 3);  // the big tensor's tail and both small ones
  check_pieces_cover_tensors(index, layout, plan);
}

TEST_CASE("layout: tensors that lie alike in the file and the arena are one piece per chunk") {
  format::ModelIndex index;
  index.files.resize(1);
  // Sizes that are multiples of 256 from a data start at 8: arena offset = file offset - 8 up to
  // and with the 100-byte tensor (30); after it the arena is padded and the file is not, and the
  // offset differs by a new constant.
  for (uint64_t i = 0, at = 8; i < 40; ++i) {
    const uint64_t bytes = i == 30 ? 100 : 256 * (1 + i % 3);
    index.tensors.push_back(tensor(0, at, bytes));
    at += bytes;
  }
  const ArenaLayout layout = layout_arena(index);
  const ReadPlan plan = plan_reads(index, layout, 4096);
  check_pieces_cover_tensors(index, layout, plan);
  // Tensors 0-30 are [8, 15468), 31-39 follow: chunks at multiples of 4096, one piece each but the
  // one where the offsets' difference changes.
  std::vector<uint32_t> counts;
  for (const auto& chunk : plan.chunks) counts.push_back(chunk.piece_count);
  CHECK(counts == std::vector<uint32_t>{1, 1, 1, 2, 1});
  for (const auto& chunk : plan.chunks)  // merged pieces never leave their chunk
    for (uint32_t p = chunk.first_piece; p < chunk.first_piece + chunk.piece_count; ++p)
      CHECK(plan.pieces[p].file_offset + plan.pieces[p].len <= chunk.offset + chunk.len);
}

TEST_CASE("layout: a file holding only empty or meta tensors gets no chunk") {
  format::ModelIndex index;
  index.files.resize(2);
  index.tensors = {tensor(0, 8, 0), tensor(0, 8, 64, true), tensor(1, 8, 16)};
  const ReadPlan plan = plan_reads(index, layout_arena(index), 4096);
  REQUIRE(plan.chunks.size() == 1);
  CHECK(plan.chunks[0].file == 1);
  CHECK(plan.bytes == 16);
}

}  // namespace
}  // namespace tensorinit::stage
