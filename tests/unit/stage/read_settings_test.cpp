// The bounds stage_model reads within: the chunk (rounded to packed frames so none is decoded
// twice), each reader's staging memory, and the reader count (auto from the cores, capped by
// memory_limit). Pure functions: every case is a number.
#include "stage/read_settings.hpp"

#include <doctest/doctest.h>

#include "stage/pipeline.hpp"

namespace tensorinit::stage {
namespace {

constexpr uint64_t kMiB = 1ull << 20;

format::ModelIndex files_with_frames(std::initializer_list<uint64_t> frames) {
  format::ModelIndex index;
  index.files.push_back({.path = "plain.safetensors", .size = 100 * kMiB});
  for (uint64_t frame : frames)
    index.files.push_back({.path = "packed.safetensors.zst", .size = 100 * kMiB, .packed = true, .frame_bytes = frame});
  return index;
}

TEST_CASE("read settings: the chunk is the request's, rounded up to whole frames of packed files") {
  CHECK(chunk_size_for({}, files_with_frames({})) == kDefaultChunkSize);
  CHECK(chunk_size_for({.chunk_size = 4 * kMiB}, files_with_frames({})) == 4 * kMiB);
  // Frames that divide the chunk: as given. 3 MB frames: the least multiple of 4 KiB and of the
  // frame (3,000,000 = 2^6 x 46875, so 4096 x 46875 = 192,000,000), at least the chunk.
  CHECK(chunk_size_for({}, files_with_frames({64 << 10})) == kDefaultChunkSize);
  CHECK(chunk_size_for({}, files_with_frames({3'000'000})) == 192'000'000);
  CHECK(chunk_size_for({.chunk_size = 200'000'000}, files_with_frames({3'000'000})) == 384'000'000);
  // Two frame sizes: a multiple of both. 5 MiB and 3 MiB: 15 MiB, then 30 MiB to cover 16 MiB.
  CHECK(chunk_size_for({}, files_with_frames({5 * kMiB, 3 * kMiB})) == 30 * kMiB);
  // Frames of varying size (0), or a common multiple over 1 GiB: the chunk as given.
  CHECK(chunk_size_for({}, files_with_frames({0})) == kDefaultChunkSize);
  CHECK(chunk_size_for({}, files_with_frames({999'999'937})) == kDefaultChunkSize);
}

TEST_CASE("read settings: a reader's staging memory, two blocks over its chunk; more with packed files") {
  CHECK(reader_bytes(files_with_frames({}), 16 * kMiB) == staging_buffer_bytes(16 * kMiB));
  CHECK(staging_buffer_bytes(16 * kMiB) == 16 * kMiB + 8192);
  // Packed: the compressed chunk (at most the chunk), the decoded chunk and one frame.
  CHECK(reader_bytes(files_with_frames({kMiB}), 16 * kMiB) == staging_buffer_bytes(33 * kMiB));
  CHECK(reader_bytes(files_with_frames({0}), 16 * kMiB) == staging_buffer_bytes(48 * kMiB));
}

TEST_CASE("read settings: readers are 4 per usable core, at least 8, or as given; memory_limit caps them") {
  const uint64_t per_reader = staging_buffer_bytes(16 * kMiB);
  CHECK(choose_readers({}, per_reader, 1) == 8);
  CHECK(choose_readers({}, per_reader, 2) == 8);
  CHECK(choose_readers({}, per_reader, 4) == 16);
  CHECK(choose_readers({}, per_reader, 16) == 63);  // 64 wanted; 1 GiB over 16 MiB + 8 KiB holds 63
  CHECK(choose_readers({.readers = 3}, per_reader, 16) == 3);
  CHECK(choose_readers({.readers = 100}, per_reader, 16) == 63);  // as given, capped alike
  CHECK(choose_readers({.memory_limit = 3 * per_reader}, per_reader, 16) == 3);
  CHECK(choose_readers({.memory_limit = 1}, per_reader, 16) == 1);  // never none
  CHECK(choose_readers({}, 0, 2) == 8);                             // a zero cost divides nothing by 0
}

}  // namespace
}  // namespace tensorinit::stage
