// pack_file on real files: the output reads back (through PackedSource, and frame by frame with
// plain libzstd) as the input, byte planes only where they are smaller, nothing left behind on
// failure. (`zstd -d` on the output is tested with the real CLI in tests/integration/test_packed.sh.)
#include <doctest/doctest.h>

#include <sys/stat.h>

#include <filesystem>

#include "io/memory_source.hpp"
#include "format/packed_source.hpp"
#include "format/packed_writer.hpp"
#include "format/safetensors_writer.hpp"
#include "io/file_source.hpp"
#include "packed_files.hpp"
#include "test_files.hpp"

namespace {

using namespace tensorinit;
using namespace tensorinit::format;
using namespace tensorinit::testing;

// A safetensors file: a bf16 weight, an odd-sized U8 tensor, an f32 norm, another bf16 weight.
std::string model_bytes(size_t bf16_count) {
  const std::string w1 = bf16_weights(bf16_count, 1), w2 = bf16_weights(bf16_count, 2);
  const std::string u8(1001, '\x07');
  std::string norm;
  for (int i = 0; i < 4096; ++i) {
    const float v = 1.0f + static_cast<float>(i % 13) * 0.001f;
    norm.append(reinterpret_cast<const char*>(&v), 4);
  }
  const std::vector<TensorSpec> specs{{"w1", "BF16", {bf16_count}, w1.size()},
                                      {"mask", "U8", {1001}, u8.size()},
                                      {"norm", "F32", {4096}, norm.size()},
                                      {"w2", "BF16", {bf16_count}, w2.size()}};
  return safetensors_head(specs, {}) + w1 + u8 + norm + w2;
}

std::string decode_all(const std::string& path) {
  auto file = io::FileSource::open(path);
  REQUIRE(file.has_value());
  auto packed = PackedSource::open(**file);
  REQUIRE(packed.has_value());
  std::string out((*packed)->size(), '\0');
  REQUIRE((*packed)->read_at(0, std::as_writable_bytes(std::span(out))).has_value());
  return out;
}

// What plain zstd makes of the file: every frame decoded in turn, skippable frames skipped.
std::string zstd_decompress(const std::string& file) {
  ZSTD_DStream* d = ZSTD_createDStream();
  std::string out, buffer(1 << 16, '\0');
  ZSTD_inBuffer in{file.data(), file.size(), 0};
  for (;;) {
    ZSTD_outBuffer o{buffer.data(), buffer.size(), 0};
    const size_t r = ZSTD_decompressStream(d, &o, &in);
    REQUIRE_FALSE(ZSTD_isError(r));
    out.append(buffer.data(), o.pos);
    if (in.pos == in.size && o.pos < o.size) break;
  }
  ZSTD_freeDStream(d);
  return out;
}

size_t entries_in(const std::string& dir) {
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir)) ++n;
  return n;
}

}  // namespace

TEST_CASE("a packed file decodes to the input, through tensorinit and through plain zstd") {
  TempDir dir;
  const std::string input = model_bytes(300'000);  // ~1.2 MB
  write_file(dir / "m.safetensors", input);
  PackOptions options{.frame_size = 256 << 10, .level = 3, .threads = 3};
  auto result = pack_file(dir / "m.safetensors", dir / "m.safetensors.zst", options);
  REQUIRE(result.has_value());
  CHECK(result->input_bytes == input.size());
  CHECK(result->frames == (input.size() + options.frame_size - 1) / options.frame_size);
  CHECK(result->split_frames == 0);
  const std::string packed = read_file(dir / "m.safetensors.zst");
  CHECK(result->output_bytes == packed.size());
  CHECK(packed.size() < input.size());
  CHECK(decode_all(dir / "m.safetensors.zst") == input);
  CHECK(zstd_decompress(packed) == input);
  CHECK(entries_in(dir.path()) == 2);  // no temporary left
  struct stat st {};
  REQUIRE(::stat((dir / "m.safetensors.zst").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0644);

  io::MemorySource source("m", packed);
  auto table = read_seek_table(source);
  REQUIRE(table.has_value());
  CHECK(table->checksums);
  CHECK(table->uniform_frame_size() == options.frame_size);
  CHECK_FALSE(table->meta_offset.has_value());
}

TEST_CASE("--split-bytes stores bf16 frames as byte planes where smaller, and still round-trips") {
  TempDir dir;
  const std::string input = model_bytes(600'000);  // ~2.4 MB, mostly bf16
  write_file(dir / "m.safetensors", input);
  PackOptions plain{.frame_size = 256 << 10, .level = 3, .threads = 2};
  PackOptions split = plain;
  split.split_bytes = true;
  auto a = pack_file(dir / "m.safetensors", dir / "plain.zst", plain);
  auto b = pack_file(dir / "m.safetensors", dir / "split.zst", split);
  REQUIRE(a.has_value());
  REQUIRE(b.has_value());
  CHECK(b->tried_split > 0);
  CHECK(b->split_frames > 0);
  CHECK(b->split_frames <= b->tried_split);
  CHECK(b->output_bytes < a->output_bytes);
  MESSAGE("bf16 ratio: plain x" << static_cast<double>(input.size()) / a->output_bytes << ", byte planes x"
                                << static_cast<double>(input.size()) / b->output_bytes);
  CHECK(decode_all(dir / "split.zst") == input);
  // Plain zstd returns the frames as stored: the same length, different bytes.
  const std::string raw = zstd_decompress(read_file(dir / "split.zst"));
  CHECK(raw.size() == input.size());
  CHECK(raw != input);
}

TEST_CASE("pack refuses what is not safetensors and leaves nothing behind") {
  TempDir dir;
  write_file(dir / "junk", std::string(5000, 'j'));
  auto r = pack_file(dir / "junk", dir / "out.zst", {});
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == Code::bad_data);
  CHECK(r.error().message.find(dir / "junk") != std::string::npos);
  const std::string good = model_bytes(1000);
  write_file(dir / "cut.safetensors", good.substr(0, good.size() - 1));
  r = pack_file(dir / "cut.safetensors", dir / "out.zst", {});
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == Code::bad_data);
  r = pack_file(dir / "absent.safetensors", dir / "out.zst", {});
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == Code::no_source);
  CHECK(entries_in(dir.path()) == 2);
}

TEST_CASE("pack refuses bad options and unwritable outputs") {
  TempDir dir;
  write_file(dir / "m.safetensors", model_bytes(1000));
  for (uint64_t frame : {uint64_t{4096}, uint64_t{(64 << 10) + 1}, uint64_t{512ull << 20}}) {
    auto r = pack_file(dir / "m.safetensors", dir / "o.zst", {.frame_size = frame});
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == Code::usage);
  }
  for (int level : {0, 23, -200000}) {
    auto r = pack_file(dir / "m.safetensors", dir / "o.zst", {.level = level});
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == Code::usage);
  }
  auto r = pack_file(dir / "m.safetensors", dir / "no-such-dir/o.zst", {});
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == Code::io);
  CHECK(entries_in(dir.path()) == 1);
}

TEST_CASE("a file smaller than one frame is one frame") {
  TempDir dir;
  const std::string input = model_bytes(10);
  write_file(dir / "m.safetensors", input);
  auto r = pack_file(dir / "m.safetensors", dir / "m.zst", {.split_bytes = true, .threads = 4});
  REQUIRE(r.has_value());
  CHECK(r->frames == 1);
  CHECK(decode_all(dir / "m.zst") == input);
}
