// Packed files in the model index (index_local_model) and through the staging pipeline: the
// tensors of a packed file are the tensors of the file it was packed from, and staged with chunks
// of whole frames they land byte-exact with every frame decoded once; chunks that cut frames
// cost at most the frames each chunk touches.
#include <doctest/doctest.h>

#include <filesystem>
#include <fmt/format.h>
#include <map>
#include <thread>

#include "format/model_files.hpp"
#include "format/packed_source.hpp"
#include "format/packed_writer.hpp"
#include "format/safetensors_writer.hpp"
#include "io/file_source.hpp"
#include "../stage/memory_sink.hpp"
#include "packed_files.hpp"
#include "stage/pipeline.hpp"
#include "test_files.hpp"

namespace {

using namespace tensorinit;
using namespace tensorinit::format;
using namespace tensorinit::testing;
using format::Format;

// bf16 tensors of assorted sizes (odd ones too), about `total` bytes.
std::string model_bytes(size_t total, uint32_t seed = 1) {
  std::vector<TensorSpec> specs;
  std::string data;
  for (size_t i = 0; data.size() < total; ++i) {
    const size_t n = 1000 + (i * 7919) % 90'000;
    specs.push_back({"layer." + std::to_string(i) + ".weight", "BF16", {n}, 2 * n});
    data += bf16_weights(n, seed + static_cast<uint32_t>(i));
  }
  return safetensors_head(specs, {}) + data;
}

void pack_to(const std::string& in, const std::string& out, uint64_t frame, bool split = false) {
  auto r = pack_file(in, out, {.frame_size = frame, .level = 1, .split_bytes = split, .threads = 2});
  REQUIRE_MESSAGE(r.has_value(), r.error().message);
}

void check_same_tensors(const ModelIndex& packed, const ModelIndex& plain) {
  REQUIRE(packed.tensors.size() == plain.tensors.size());
  for (size_t i = 0; i < plain.tensors.size(); ++i) {
    CHECK(packed.tensors[i].name == plain.tensors[i].name);
    CHECK(packed.tensors[i].file_offset == plain.tensors[i].file_offset);
    CHECK(packed.tensors[i].bytes == plain.tensors[i].bytes);
  }
}

// The same tensors (name, offset in the decoded file, bytes) in whatever file order.
void check_same_tensors_by_name(const ModelIndex& packed, const ModelIndex& plain) {
  std::map<std::string, std::pair<uint64_t, uint64_t>> want;
  for (const auto& t : plain.tensors) want[t.name] = {t.file_offset, t.bytes};
  REQUIRE(packed.tensors.size() == want.size());
  for (const auto& t : packed.tensors) CHECK(want[t.name] == std::make_pair(t.file_offset, t.bytes));
}

}  // namespace

TEST_CASE("a packed file indexes like the file it was packed from") {
  TempDir dir;
  write_file(dir / "model.safetensors", model_bytes(600'000));
  pack_to(dir / "model.safetensors", dir / "model.safetensors.zst", 64 << 10);
  auto plain = index_local_model(dir / "model.safetensors", Format::automatic);
  REQUIRE(plain.has_value());
  for (Format format : {Format::automatic, Format::packed}) {
    auto packed = index_local_model(dir / "model.safetensors.zst", format);
    REQUIRE_MESSAGE(packed.has_value(), packed.error().message);
    CHECK(packed->format == Format::packed);
    REQUIRE(packed->files.size() == 1);
    CHECK(packed->files[0].packed);
    CHECK(packed->files[0].size == plain->files[0].size);
    CHECK(packed->files[0].stored_size == std::filesystem::file_size(dir / "model.safetensors.zst"));
    CHECK(packed->files[0].frame_bytes == 64 << 10);
    check_same_tensors(*packed, *plain);
  }
}

TEST_CASE("format auto recognises a packed file by its magic whatever its name") {
  TempDir dir;
  write_file(dir / "model.safetensors", model_bytes(100'000));
  pack_to(dir / "model.safetensors", dir / "weights.bin", 64 << 10);
  auto packed = index_local_model(dir / "weights.bin", Format::automatic);
  REQUIRE_MESSAGE(packed.has_value(), packed.error().message);
  CHECK(packed->files[0].packed);
}

TEST_CASE("a directory of packed files, and sharded packed models") {
  TempDir dir;
  const std::string a = model_bytes(100'000, 1), b = model_bytes(100'000, 50);
  // Distinct names in the two shards.
  write_file(dir / "a.safetensors", a);
  std::string b_renamed = b;
  for (size_t at = 0; (at = b_renamed.find("layer.", at)) != std::string::npos && at < 8 + 4096; at += 6)
    b_renamed[at] = 'L';
  write_file(dir / "b.safetensors", b_renamed);
  std::filesystem::create_directory(dir / "packed");
  pack_to(dir / "a.safetensors", dir / "packed/model-1.safetensors.zst", 64 << 10);
  pack_to(dir / "b.safetensors", dir / "packed/model-2.safetensors.zst", 64 << 10);
  auto index = index_local_model(dir / "packed", Format::automatic);
  REQUIRE_MESSAGE(index.has_value(), index.error().message);
  CHECK(index->format == Format::packed);
  CHECK(index->files.size() == 2);
  CHECK(index->files[0].packed);
  CHECK(index->files[1].packed);
  auto explicit_packed = index_local_model(dir / "packed", Format::packed);
  REQUIRE(explicit_packed.has_value());
  CHECK(explicit_packed->tensors.size() == index->tensors.size());
  // format: safetensors finds no *.safetensors there.
  auto wrong = index_local_model(dir / "packed", Format::safetensors);
  REQUIRE_FALSE(wrong.has_value());
  CHECK(wrong.error().code == Code::no_source);
}

TEST_CASE("packed files and the format the manifest names must agree") {
  TempDir dir;
  write_file(dir / "model.safetensors", model_bytes(50'000));
  pack_to(dir / "model.safetensors", dir / "model.safetensors.zst", 64 << 10);
  auto r = index_local_model(dir / "model.safetensors.zst", Format::safetensors);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == Code::bad_data);
  CHECK(r.error().message.find("format: safetensors") != std::string::npos);
  r = index_local_model(dir / "model.safetensors", Format::packed);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == Code::bad_data);
  CHECK(r.error().message.find("no seekable-format magic") != std::string::npos);
  write_file(dir / "junk.zst", "not zstd at all, just some words");
  r = index_local_model(dir / "junk.zst", Format::automatic);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == Code::bad_data);
  CHECK(r.error().message.find(dir / "junk.zst") != std::string::npos);
}

TEST_CASE("a packed file whose decoded header lies is bad data, not an incomplete file") {
  TempDir dir;
  std::string bytes = model_bytes(50'000);
  write_file(dir / "m.safetensors", bytes);
  // The header promises more data than there is; the packed copy is then internally inconsistent.
  std::string cut = bytes.substr(0, bytes.size() - 2);
  const Packed p = pack(cut, 16 << 10);
  write_file(dir / "m.safetensors.zst", p.file);
  auto r = index_local_model(dir / "m.safetensors.zst", Format::automatic);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == Code::bad_data);
}

TEST_CASE("staged in chunks of whole frames, every frame is decoded once and every byte lands") {
  TempDir dir;
  const std::string bytes = model_bytes(1'500'000);
  write_file(dir / "m.safetensors", bytes);
  for (bool split : {false, true}) {
    pack_to(dir / "m.safetensors", dir / "m.safetensors.zst", 64 << 10, split);
    auto index = index_local_model(dir / "m.safetensors.zst", Format::automatic);
    REQUIRE(index.has_value());
    auto file = io::FileSource::open(dir / "m.safetensors.zst");
    REQUIRE(file.has_value());
    for (uint64_t chunk : {uint64_t{64 << 10}, uint64_t{256 << 10}, uint64_t{20 << 10}}) {
      auto packed = PackedSource::open(**file);
      REQUIRE(packed.has_value());
      const auto layout = stage::layout_arena(*index);
      const auto plan = stage::plan_reads(*index, layout, chunk);
      std::vector<std::byte> arena(layout.bytes);
      MemorySink sink(arena);
      std::atomic<uint64_t> done{0};
      std::vector<const io::ByteSource*> sources{packed->get()};
      auto ok = stage::run_pipeline(plan, sources, sink, {.readers = 3, .chunk_size = chunk}, {}, done);
      REQUIRE_MESSAGE(ok.has_value(), ok.error().message);
      for (size_t i = 0; i < index->tensors.size(); ++i) {
        const auto& t = index->tensors[i];
        CHECK(std::memcmp(arena.data() + layout.offsets[i], bytes.data() + t.file_offset, t.bytes) == 0);
      }
      const uint64_t decoded = (*packed)->decoded_bytes();
      const uint64_t frames_touched = bytes.size() - (index->tensors.front().file_offset / (64 << 10)) * (64 << 10);
      // At most every frame each chunk touches; how much less depends on which reader takes
      // which chunk (a reader reuses the frame it decoded last), so only the bounds are checked.
      const SeekTable& table = (*packed)->table();
      uint64_t most = 0;
      for (const auto& c : plan.chunks)
        for (size_t f = table.frame_at(c.offset); f <= table.frame_at(c.offset + c.len - 1); ++f)
          most += table.frames[f].size;
      if (chunk % (64 << 10) == 0)
        CHECK(decoded == frames_touched);  // whole frames: each decoded once
      CHECK(decoded >= frames_touched);
      CHECK(decoded <= most);
      MESSAGE("split " << split << ", chunk " << chunk << ": decoded " << decoded << " for " << plan.bytes << " tensor bytes");
    }
  }
}

TEST_CASE("a frame cut between reads is decoded once per reader thread that reads part of it") {
  // What staging with chunks that cut frames costs, without depending on the scheduler: the
  // reader that reads the rest of a frame it decoded reuses it; another reader decodes it again.
  TempDir dir;
  const std::string bytes = model_bytes(300'000);
  write_file(dir / "m.safetensors", bytes);
  pack_to(dir / "m.safetensors", dir / "m.safetensors.zst", 64 << 10);
  auto file = io::FileSource::open(dir / "m.safetensors.zst");
  REQUIRE(file.has_value());
  auto packed = PackedSource::open(**file);
  REQUIRE(packed.has_value());
  const PackedSource& source = **packed;
  const uint64_t frame = source.table().frames[1].size;
  REQUIRE(frame == (64 << 10));
  const uint64_t first_half = (64 << 10) + 1000, second_half = (64 << 10) + 40'000;
  auto read = [&](uint64_t from, uint64_t to) {
    std::string out(to - from, '\0');
    CHECK(source.read_at(from, std::as_writable_bytes(std::span(out))).has_value());
    CHECK(out == bytes.substr(from, to - from));
  };
  std::thread([&] { read(first_half, second_half); }).join();
  CHECK(source.decoded_bytes() == frame);
  std::thread([&] {
    read(second_half, 2 * frame);
    read(first_half, second_half);  // the frame this thread decoded last: not decoded again
  }).join();
  CHECK(source.decoded_bytes() == 2 * frame);
}

TEST_CASE("a sharded model keeps its index.json when some or all shards are packed") {
  TempDir dir;
  std::string a = model_bytes(60'000, 1), b = model_bytes(60'000, 9);
  for (size_t at = 0; (at = b.find("layer.", at)) != std::string::npos && at < 4096; at += 6) b[at] = 'L';
  write_file(dir / "s1.safetensors", a);
  write_file(dir / "s2.safetensors", b);
  auto plain = index_local_model(dir.path(), Format::automatic);
  REQUIRE(plain.has_value());
  std::string map;
  for (const auto& t : plain->tensors)
    map += fmt::format("{}\"{}\":\"{}\"", map.empty() ? "" : ",", t.name,
                       std::filesystem::path(plain->files[t.file].path).filename().string());
  std::filesystem::create_directory(dir / "m");
  write_file(dir / "m/model.safetensors.index.json", fmt::format(R"({{"weight_map":{{{}}}}})", map));
  pack_to(dir / "s1.safetensors", dir / "m/s1.safetensors.zst", 64 << 10);
  write_file(dir / "m/s2.safetensors", b);
  auto mixed = index_local_model(dir / "m", Format::automatic);
  REQUIRE_MESSAGE(mixed.has_value(), mixed.error().message);
  REQUIRE(mixed->files.size() == 2);
  for (const auto& f : mixed->files) CHECK(f.packed == f.path.ends_with("s1.safetensors.zst"));
  CHECK(mixed->format == Format::safetensors);
  check_same_tensors_by_name(*mixed, *plain);
  pack_to(dir / "s2.safetensors", dir / "m/s2.safetensors.zst", 64 << 10);
  std::filesystem::remove(dir / "m/s2.safetensors");
  auto packed = index_local_model(dir / "m", Format::automatic);
  REQUIRE_MESSAGE(packed.has_value(), packed.error().message);
  CHECK(packed->format == Format::packed);
  check_same_tensors_by_name(*packed, *plain);
  // A tensor the index places elsewhere is still caught through the packed name.
  write_file(dir / "m/model.safetensors.index.json", R"({"weight_map":{"layer.0.weight":"s2.safetensors"}})");
  auto wrong = index_local_model(dir / "m", Format::automatic);
  REQUIRE_FALSE(wrong.has_value());
  CHECK(wrong.error().code == Code::bad_data);
}
