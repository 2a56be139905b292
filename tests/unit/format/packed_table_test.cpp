// The seek table of packed files: parsed from hand-built files (packed_files.hpp), and every lie
// or corruption refused with Code::bad_data naming the file.
#include <doctest/doctest.h>

#include "io/memory_source.hpp"
#include "format/packed_table.hpp"
#include "packed_files.hpp"

namespace {

using namespace tensorinit;
using namespace tensorinit::format;
using namespace tensorinit::testing;

constexpr const char* kName = "model.safetensors.zst";

Result<SeekTable> table_of(const std::string& file) {
  io::MemorySource source(kName, file);
  return read_seek_table(source);
}

void check_refused(const std::string& file, std::string_view what) {
  auto table = table_of(file);
  REQUIRE_FALSE(table.has_value());
  INFO("message: " << table.error().message);
  CHECK(table.error().code == Code::bad_data);
  CHECK(table.error().message.find(kName) != std::string::npos);
  CHECK(table.error().message.find(what) != std::string::npos);
  CHECK(table.error().message.find('\n') == std::string::npos);
}

std::string sample(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>("tensorinit"[i % 10] + (i / 977) % 7);
  return s;
}

}  // namespace

TEST_CASE("a seek table lists every frame with offsets, sizes and checksums") {
  const std::string data = sample(10'000);
  const Packed p = pack(data, 4096);
  auto table = table_of(p.file);
  REQUIRE(table.has_value());
  REQUIRE(table->frames.size() == 3);
  CHECK(table->checksums);
  CHECK(table->decoded_size == data.size());
  CHECK(table->table_bytes == 8 + 3 * 12 + 9);
  CHECK_FALSE(table->meta_offset.has_value());
  uint64_t stored = 0;
  for (size_t i = 0; i < 3; ++i) {
    const auto& f = table->frames[i];
    CHECK(f.offset == i * 4096);
    CHECK(f.size == std::min<size_t>(4096, data.size() - i * 4096));
    CHECK(f.stored_offset == stored);
    CHECK(f.stored_size == p.frames[i].size());
    CHECK(f.checksum == xxh64_low(data.substr(i * 4096, f.size)));
    CHECK(f.transform == 0);
    stored += f.stored_size;
  }
  CHECK(table->uniform_frame_size() == 4096);
  CHECK(table->frame_at(0) == 0);
  CHECK(table->frame_at(4095) == 0);
  CHECK(table->frame_at(4096) == 1);
  CHECK(table->frame_at(9999) == 2);
}

TEST_CASE("a seek table without checksums, and frames of varying size") {
  std::string file;
  std::vector<Entry> entries;
  for (size_t n : {5000, 3000, 5000}) {
    const std::string f = zstd_frame(sample(n));
    entries.push_back({static_cast<uint32_t>(f.size()), static_cast<uint32_t>(n)});
    file += f;
  }
  file += seek_table(entries, false);
  auto table = table_of(file);
  REQUIRE(table.has_value());
  CHECK_FALSE(table->checksums);
  CHECK(table->frames.size() == 3);
  CHECK(table->decoded_size == 13000);
  CHECK(table->uniform_frame_size() == 0);
  CHECK(table->frame_at(7999) == 1);
  CHECK(table->frame_at(8000) == 2);
}

TEST_CASE("tensorinit's metadata frame marks byte-plane frames") {
  const std::string data = sample(9000);
  const Packed p = pack(data, 4096, {2, 0, 4});
  auto table = table_of(p.file);
  REQUIRE(table.has_value());
  REQUIRE(table->frames.size() == 3);
  CHECK(table->frames[0].transform == 2);
  CHECK(table->frames[1].transform == 0);
  CHECK(table->frames[2].transform == 4);
  CHECK(table->meta_offset.has_value());
  CHECK(table->decoded_size == data.size());
}

TEST_CASE("someone else's skippable frame as the last entry is ignored") {
  const std::string data = sample(5000);
  Packed p = pack(data, 4096);
  std::string other;
  append_u32(other, 0x184D2A50);
  append_u32(other, 4);
  other += "abcd";
  std::string file;
  for (const auto& f : p.frames) file += f;
  auto entries = p.entries;
  entries.push_back({static_cast<uint32_t>(other.size()), 0, 0});
  file += other + seek_table(entries);
  auto table = table_of(file);
  REQUIRE(table.has_value());
  CHECK(table->frames.size() == 2);
  CHECK_FALSE(table->meta_offset.has_value());
}

TEST_CASE("a large seek table beyond the first tail read") {
  // 30,000 frames: the table (360 KB) is larger than the 256 KiB tail read.
  std::string file;
  std::vector<Entry> entries;
  const std::string frame = zstd_frame("x");
  for (int i = 0; i < 30'000; ++i) {
    file += frame;
    entries.push_back({static_cast<uint32_t>(frame.size()), 1, xxh64_low("x")});
  }
  file += seek_table(entries);
  auto table = table_of(file);
  REQUIRE(table.has_value());
  CHECK(table->frames.size() == 30'000);
  CHECK(table->decoded_size == 30'000);
}

TEST_CASE("truncated and corrupt footers are refused") {
  const Packed p = pack(sample(10'000), 4096);
  check_refused(p.file.substr(0, p.file.size() - 1), "no seekable-format magic");
  check_refused(p.file.substr(0, 10), "too short");
  check_refused("", "too short");
  check_refused(std::string(4096, 'x'), "no seekable-format magic");

  std::string reserved = p.file;
  reserved[reserved.size() - 5] = static_cast<char>(0x80 | 0x04);
  check_refused(reserved, "reserved bits");

  std::string many = p.file;  // the footer claims more frames than the file could hold
  many[many.size() - 9] = static_cast<char>(0xFF);
  many[many.size() - 8] = static_cast<char>(0xFF);
  check_refused(many, "larger than the");

  std::string huge = p.file;  // over the 2^27-frame limit
  for (int i = 0; i < 4; ++i) huge[huge.size() - 9 + i] = static_cast<char>(0xFF);
  check_refused(huge, "the limit is");
}

TEST_CASE("a seek table whose frame header or entries lie is refused") {
  const std::string data = sample(10'000);
  const Packed p = pack(data, 4096);
  std::string frames;
  for (const auto& f : p.frames) frames += f;

  std::string magic = p.file;
  magic[frames.size()] ^= 1;
  check_refused(magic, "wrong magic");

  std::string size_field = p.file;
  size_field[frames.size() + 4] ^= 1;
  check_refused(size_field, "footer implies");

  auto lie = [&](auto edit) {
    auto entries = p.entries;
    edit(entries);
    return frames + seek_table(entries);
  };
  check_refused(lie([](auto& e) { e[0].stored += 1; }), "run past");
  check_refused(lie([](auto& e) { e[1].stored += 50; }), "run past");
  check_refused(lie([](auto& e) { e[2].stored -= 1; }), "cover");
  check_refused(lie([](auto& e) { e[1].size = 0x40000001; }), "the limit is");
  check_refused(lie([](auto& e) { e[0].size = 1u << 30; }), "cannot hold");  // too few bytes for 1 GiB
  check_refused(frames + seek_table({{0, 5, 0}, {static_cast<uint32_t>(frames.size()), 10'000, 0}}), "no compressed bytes");
  check_refused(frames.substr(1) + seek_table(p.entries), "run past");  // a byte missing before the table

  // More compressed bytes than zstd could make of the decoded size.
  std::string noise(4096, '\0');
  std::mt19937 rng(3);
  for (auto& c : noise) c = static_cast<char>(rng());
  Packed q = pack(noise, 4096);
  q.entries[0].size = 1;
  check_refused(q.frames[0] + seek_table(q.entries), "cannot hold");
}

TEST_CASE("a lying or corrupt metadata frame is refused") {
  const std::string data = sample(9000);
  const Packed p = pack(data, 4096, {2, 0, 2});
  std::string frames;
  for (size_t i = 0; i < 3; ++i) frames += p.frames[i];
  auto with_meta = [&](const std::string& meta) {
    auto entries = std::vector<Entry>(p.entries.begin(), p.entries.begin() + 3);
    entries.push_back({static_cast<uint32_t>(meta.size()), 0, 0});
    return frames + meta + seek_table(entries);
  };
  std::string bad_sum = meta_frame({2, 0, 2});
  bad_sum.back() = 4;  // the transforms changed, the checksum did not
  check_refused(with_meta(bad_sum), "checksum");
  check_refused(with_meta(meta_frame({2, 0})), "expected");          // 2 transforms for 3 frames
  check_refused(with_meta(meta_frame({2, 0, 2, 2})), "expected");
  check_refused(with_meta(meta_frame({2, 3, 2})), "unknown transform 3");
  std::string version = meta_frame({2, 0, 2});
  version[15] = '2';  // TIPACK02
  check_refused(with_meta(version), "unknown version");
}

TEST_CASE("has_seekable_footer sniffs the magic only") {
  const Packed p = pack(sample(100), 4096);
  const std::string text = sample(100);
  io::MemorySource packed(kName, p.file), plain(kName, text), tiny(kName, "ab");
  CHECK(has_seekable_footer(packed));
  CHECK_FALSE(has_seekable_footer(plain));
  CHECK_FALSE(has_seekable_footer(tiny));
}

TEST_CASE("the writer's seek table and metadata frame read back") {
  const std::vector<SeekEntry> entries{{10, 100, 7}, {20, 200, 8}};
  const std::vector<uint8_t> transforms{0, 2};
  // Frames are not checked by the parser beyond their sizes: bytes of the right length will do.
  std::string frames(10 + 20, 'z');
  std::string meta = packed_metadata_frame(transforms);
  std::vector<SeekEntry> all = entries;
  all.push_back({static_cast<uint32_t>(meta.size()), 0, 0});
  const std::string file = frames + meta + seek_table_frame(all);
  CHECK(meta == meta_frame({0, 2}));
  auto table = table_of(file);
  REQUIRE(table.has_value());
  REQUIRE(table->frames.size() == 2);
  CHECK(table->frames[1].offset == 100);
  CHECK(table->frames[1].stored_offset == 10);
  CHECK(table->frames[1].checksum == 8);
  CHECK(table->frames[1].transform == 2);
}
