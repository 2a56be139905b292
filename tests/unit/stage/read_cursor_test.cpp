#include "stage/read_cursor.hpp"

#include <doctest/doctest.h>

namespace tensorinit::stage {
namespace {

constexpr uint64_t kKiB = 1024;
constexpr uint64_t kMiB = 1024 * kKiB;

// Two files' chunks as plan_reads makes them: the first starts at an unaligned offset.
ReadPlan two_files() {
  ReadPlan plan;
  plan.chunks = {{.file = 0, .offset = 109, .len = 1 * kMiB - 109},
                 {.file = 0, .offset = 1 * kMiB, .len = 600 * kKiB},
                 {.file = 1, .offset = 8, .len = 300 * kKiB}};
  return plan;
}

}  // namespace

TEST_CASE("read cursor: parts in file order, ending at multiples of the request, never across a chunk") {
  const ReadPlan plan = two_files();
  ReadCursor cursor(plan);
  std::vector<ReadCursor::Part> parts;
  while (auto p = cursor.take(256 * kKiB)) parts.push_back(*p);
  REQUIRE(parts.size() == 4 + 3 + 2);
  // Chunk 0: [109, 256K) then whole 256 KiB parts to its end.
  CHECK(parts[0].chunk == 0);
  CHECK(parts[0].from == 0);
  CHECK(parts[0].to == 256 * kKiB - 109);
  CHECK(parts[3].to == plan.chunks[0].len);
  // Every part follows the one before it (or starts the next chunk), none longer than the request.
  for (size_t i = 0; i < parts.size(); ++i) {
    CHECK(parts[i].to > parts[i].from);
    CHECK(parts[i].to - parts[i].from <= 256 * kKiB);
    if (i > 0 && parts[i].chunk == parts[i - 1].chunk) CHECK(parts[i].from == parts[i - 1].to);
    if (i > 0 && parts[i].chunk != parts[i - 1].chunk) {
      CHECK(parts[i].chunk == parts[i - 1].chunk + 1);
      CHECK(parts[i - 1].to == plan.chunks[parts[i - 1].chunk].len);
      CHECK(parts[i].from == 0);
    }
    const bool aligned = (plan.chunks[parts[i].chunk].offset + parts[i].to) % (256 * kKiB) == 0;
    CHECK((aligned || parts[i].to == plan.chunks[parts[i].chunk].len));
  }
  CHECK_FALSE(cursor.take(256 * kKiB));
}

TEST_CASE("read cursor: a whole-chunk take gets the rest of a chunk parts were cut from") {
  const ReadPlan plan = two_files();
  ReadCursor cursor(plan);
  CHECK(cursor.take(256 * kKiB)->to == 256 * kKiB - 109);
  const auto rest = cursor.take(0);
  REQUIRE(rest);
  CHECK(rest->chunk == 0);
  CHECK(rest->from == 256 * kKiB - 109);
  CHECK(rest->to == plan.chunks[0].len);
  const auto next = cursor.take(0);
  REQUIRE(next);
  CHECK(next->chunk == 1);
  CHECK(next->from == 0);
  CHECK(next->to == 600 * kKiB);
  CHECK(cursor.take(1 * kMiB)->chunk == 2);
  CHECK_FALSE(cursor.take(0));
}

TEST_CASE("read cursor: announces kAhead past the cursor in quarter steps, from scratch per file") {
  ReadPlan plan;
  for (uint64_t at = 0; at < 64 * kMiB; at += 16 * kMiB) plan.chunks.push_back({.file = 0, .offset = at, .len = 16 * kMiB});
  plan.chunks.push_back({.file = 1, .offset = 0, .len = 16 * kMiB});
  ReadCursor cursor(plan);
  constexpr uint64_t ahead = ReadCursor::kAhead;
  auto first = cursor.announce(*cursor.take(kMiB));
  CHECK(first == std::pair<uint64_t, uint64_t>{0, kMiB + ahead});
  uint64_t announced = first.second, calls = 0;
  for (uint64_t end = 2 * kMiB; end <= 64 * kMiB; end += kMiB) {
    const auto part = cursor.take(kMiB);
    REQUIRE(part);
    const auto [from, to] = cursor.announce(*part);
    if (to <= from) {
      CHECK(announced >= end + ahead * 3 / 4);  // still far enough ahead
      continue;
    }
    ++calls;
    CHECK(from == announced);  // contiguous: nothing announced twice, nothing skipped
    CHECK(to == end + ahead);
    announced = to;
  }
  CHECK(calls == 7);  // at 9, 17, ... 57 MiB: every quarter of kAhead (32 MiB)
  // The next file: announced from its own start.
  const auto other = cursor.announce(*cursor.take(kMiB));
  CHECK(other == std::pair<uint64_t, uint64_t>{0, kMiB + ahead});
}

TEST_CASE("read cursor: a resumed cursor announces from where it is, not from what was announced long before") {
  ReadPlan plan;
  for (uint64_t at = 0; at < 256 * kMiB; at += 16 * kMiB) plan.chunks.push_back({.file = 0, .offset = at, .len = 16 * kMiB});
  ReadCursor cursor(plan);
  cursor.announce(*cursor.take(kMiB));
  for (int i = 0; i < 8; ++i) cursor.take(0);  // whole-chunk epochs moved it on
  const auto part = cursor.take(kMiB);
  const auto [from, to] = cursor.announce(*part);
  CHECK(from == plan.chunks[part->chunk].offset + part->from);
  CHECK(to == from + kMiB + ReadCursor::kAhead);
}

TEST_CASE("read cursor: clipped pieces cover exactly the part, arena offsets shifted alike") {
  const std::vector<Piece> pieces = {{100, 1000, 50}, {150, 2000, 1000}, {1150, 5000, 10}};
  std::vector<Piece> out;
  clip_pieces(pieces, 120, 1155, out);
  REQUIRE(out.size() == 3);
  CHECK(out[0].file_offset == 120);
  CHECK(out[0].dest_offset == 1020);
  CHECK(out[0].len == 30);
  CHECK(out[1].file_offset == 150);
  CHECK(out[1].len == 1000);
  CHECK(out[2].dest_offset == 5000);
  CHECK(out[2].len == 5);
  clip_pieces(pieces, 1160, 2000, out);
  CHECK(out.empty());
}

TEST_CASE("read cursor: a part is a chunk of its own; a whole chunk keeps the plan's pieces") {
  ReadPlan plan;
  plan.pieces = {{.file_offset = 4000, .dest_offset = 0, .len = 100}, {.file_offset = 4100, .dest_offset = 256, .len = 8000}};
  plan.chunks = {{.file = 3, .offset = 4000, .len = 8100, .first_piece = 0, .piece_count = 2}};
  std::vector<Piece> scratch;
  const auto [whole, all] = part_of(plan, {.chunk = 0, .from = 0, .to = 8100}, scratch);
  CHECK(all.data() == plan.pieces.data());
  CHECK(all.size() == 2);
  CHECK(whole.offset == 4000);
  const auto [part, clipped] = part_of(plan, {.chunk = 0, .from = 96, .to = 4096}, scratch);
  CHECK(part.file == 3);
  CHECK(part.offset == 4096);
  CHECK(part.len == 4000);
  REQUIRE(clipped.size() == 2);
  CHECK(part.piece_count == 2);
  CHECK(clipped[0].file_offset == 4096);
  CHECK(clipped[0].dest_offset == 96);
  CHECK(clipped[0].len == 4);
  CHECK(clipped[1].dest_offset == 256);
  CHECK(clipped[1].len == 3996);
}

}  // namespace tensorinit::stage
