// PackedSource: the decoded bytes of hand-built packed files, read in every shape a reader may ask
// for (whole frames, across boundaries, single bytes, from many threads), byte planes undone, and
// every corruption refused with Code::bad_data naming the file and the frame.
#include <doctest/doctest.h>

#include <atomic>
#include <thread>

#include "io/memory_source.hpp"
#include "format/packed_source.hpp"
#include "format/packed_transform.hpp"
#include "packed_files.hpp"

namespace {

using namespace tensorinit;
using namespace tensorinit::format;
using namespace tensorinit::testing;

constexpr const char* kName = "model.safetensors.zst";

// Like an O_DIRECT file: counts reads that are not aligned (other than the file's short tail).
class AlignedSource final : public io::ByteSource {
 public:
  AlignedSource(std::string bytes, uint64_t align) : bytes_(std::move(bytes)), align_(align) {}
  uint64_t size() const override { return bytes_.size(); }
  const std::string& name() const override { return name_; }
  uint64_t alignment() const override { return align_; }
  Status read_at(uint64_t offset, std::span<std::byte> out) const override {
    ++reads;
    const bool tail = offset + out.size() == bytes_.size() && out.size() < align_;
    if (!tail && (offset % align_ || out.size() % align_ || reinterpret_cast<uintptr_t>(out.data()) % align_))
      ++misaligned;
    return inner_.read_at(offset, out);
  }
  mutable std::atomic<int> reads{0}, misaligned{0};

 private:
  std::string name_ = kName;
  std::string bytes_;
  uint64_t align_;
  io::MemorySource inner_{name_, bytes_};
};

std::string noise_and_text(size_t n, uint32_t seed = 5) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = (i / 300) % 2 ? static_cast<char>(rng()) : "weights!"[i % 8];
  return s;
}

std::string read(const PackedSource& source, uint64_t offset, size_t len) {
  std::string out(len, '\0');
  auto ok = source.read_at(offset, std::as_writable_bytes(std::span(out)));
  if (!ok) FAIL("read_at(" << offset << ", " << len << "): " << ok.error().message);
  return out;
}

void check_refused(const Status& s, std::string_view what) {
  REQUIRE_FALSE(s.has_value());
  INFO("message: " << s.error().message);
  CHECK(s.error().code == Code::bad_data);
  CHECK(s.error().message.find(kName) != std::string::npos);
  CHECK(s.error().message.find(what) != std::string::npos);
}

Status read_all(const PackedSource& source) {
  std::string out(source.size(), '\0');
  return source.read_at(0, std::as_writable_bytes(std::span(out)));
}

}  // namespace

TEST_CASE("byte planes match the obvious definition and join back from any offset") {
  for (unsigned k : {2u, 4u})
    for (size_t n : {0, 1, 2, 3, 5, 8, 63, 64, 1001}) {
      const std::string in = noise_and_text(n, static_cast<uint32_t>(n));
      std::string planes(n, '\0');
      split_planes(std::as_bytes(std::span(in)), k, std::as_writable_bytes(std::span(planes)));
      CHECK(planes == naive_planes(in, k));
      for (size_t from = 0; from <= n; from += (n > 20 ? 7 : 1))
        for (size_t len : {size_t{0}, size_t{1}, size_t{3}, size_t{4}, size_t{9}, n}) {
          if (from + len > n) continue;
          std::string out(len, '\0');
          join_planes(std::as_bytes(std::span(planes)), k, from, std::as_writable_bytes(std::span(out)));
          CHECK_MESSAGE(out == in.substr(from, len), "k=" << k << " n=" << n << " from=" << from << " len=" << len);
        }
    }
}

TEST_CASE("reads of every shape return the original bytes") {
  const std::string data = noise_and_text(50'000);
  const Packed p = pack(data, 8192);
  io::MemorySource file(kName, p.file);
  auto source = PackedSource::open(file);
  REQUIRE(source.has_value());
  const PackedSource& s = **source;
  CHECK(s.size() == data.size());
  CHECK(s.name() == kName);
  CHECK(read(s, 0, data.size()) == data);
  for (uint64_t at : {0, 1, 8191, 8192, 8193, 16383, 40000, 49999})
    for (size_t len : {1, 2, 100, 8192, 20000})
      if (at + len <= data.size()) CHECK(read(s, at, len) == data.substr(at, len));
  CHECK(read(s, 49'152, 50'000 - 49'152) == data.substr(49'152));  // the short last frame
  CHECK(read(s, 123, 0).empty());
}

TEST_CASE("byte-plane frames come back as the original bytes") {
  const std::string data = bf16_weights(20'000) + noise_and_text(1001);  // 41,001 bytes
  const Packed p = pack(data, 8192, {2, 2, 0, 4, 2, 2});
  io::MemorySource file(kName, p.file);
  auto source = PackedSource::open(file);
  REQUIRE(source.has_value());
  CHECK(read(**source, 0, data.size()) == data);
  for (uint64_t at : {0, 1, 8191, 8192, 24575, 24576, 24577, 40999})
    for (size_t len : {1, 3, 8192, 9000})
      if (at + len <= data.size()) CHECK(read(**source, at, len) == data.substr(at, len));
}

TEST_CASE("frame-aligned reads decode each frame once; cut frames are decoded once per thread") {
  const std::string data = noise_and_text(64 * 1024);
  const Packed p = pack(data, 16 * 1024);
  io::MemorySource file(kName, p.file);
  auto source = PackedSource::open(file);
  REQUIRE(source.has_value());
  const PackedSource& s = **source;
  CHECK(read(s, 0, 32 * 1024) == data.substr(0, 32 * 1024));
  CHECK(s.decoded_bytes() == 32 * 1024);
  CHECK(s.compressed_bytes_read() == p.entries[0].stored + p.entries[1].stored);
  // Two reads inside frame 2: decoded once, the second served from the thread's frame.
  CHECK(read(s, 32 * 1024 + 10, 100) == data.substr(32 * 1024 + 10, 100));
  CHECK(read(s, 32 * 1024 + 5000, 100) == data.substr(32 * 1024 + 5000, 100));
  CHECK(s.decoded_bytes() == 48 * 1024);
  CHECK(s.compressed_bytes_read() == p.entries[0].stored + p.entries[1].stored + p.entries[2].stored);
}

TEST_CASE("two sources never share a cached frame") {
  const std::string a = noise_and_text(10'000, 1), b = noise_and_text(10'000, 2);
  const Packed pa = pack(a, 8192), pb = pack(b, 8192);
  io::MemorySource fa(kName, pa.file), fb(kName, pb.file);
  auto sa = PackedSource::open(fa);
  auto sb = PackedSource::open(fb);
  REQUIRE(sa.has_value());
  REQUIRE(sb.has_value());
  CHECK(read(**sa, 10, 10) == a.substr(10, 10));
  CHECK(read(**sb, 10, 10) == b.substr(10, 10));
  CHECK(read(**sa, 20, 10) == a.substr(20, 10));
}

TEST_CASE("an aligned inner source (O_DIRECT) gets aligned reads only") {
  const std::string data = noise_and_text(200'000);
  const Packed p = pack(data, 16 * 1024);
  AlignedSource file(p.file, 4096);
  auto source = PackedSource::open(file);
  REQUIRE(source.has_value());
  const int before = file.misaligned.load();  // the seek-table read at open is the file's tail
  CHECK(read(**source, 0, data.size()) == data);
  CHECK(read(**source, 70'000, 50'000) == data.substr(70'000, 50'000));
  CHECK(read(**source, 199'000, 1000) == data.substr(199'000));
  CHECK(file.misaligned.load() == before);
}

TEST_CASE("many threads reading at once each get the right bytes") {
  const std::string data = bf16_weights(200'000);
  const Packed p = pack(data, 16 * 1024, std::vector<uint8_t>(25, 2));
  io::MemorySource file(kName, p.file);
  auto source = PackedSource::open(file);
  REQUIRE(source.has_value());
  std::atomic<int> wrong{0};
  {
    std::vector<std::jthread> threads;
    for (uint32_t t = 0; t < 4; ++t)
      threads.emplace_back([&, t] {
        std::mt19937 rng(t);
        for (int i = 0; i < 200; ++i) {
          const uint64_t at = rng() % data.size();
          const size_t len = std::min<size_t>(1 + rng() % 40'000, data.size() - at);
          std::string out(len, '\0');
          if (!(*source)->read_at(at, std::as_writable_bytes(std::span(out))) || out != data.substr(at, len)) ++wrong;
        }
      });
  }
  CHECK(wrong.load() == 0);
}

TEST_CASE("reads past the decoded end are refused") {
  const Packed p = pack(noise_and_text(1000), 4096);
  io::MemorySource file(kName, p.file);
  auto source = PackedSource::open(file);
  REQUIRE(source.has_value());
  std::string out(10, '\0');
  check_refused((*source)->read_at(995, std::as_writable_bytes(std::span(out))), "ends at 1000");
  check_refused((*source)->read_at(UINT64_MAX - 3, std::as_writable_bytes(std::span(out))), "ends at 1000");
}

TEST_CASE("a wrong checksum, a corrupt frame or a lying size is bad data naming the frame") {
  const std::string data = noise_and_text(20'000);
  const Packed p = pack(data, 8192);
  std::string frames;
  for (const auto& f : p.frames) frames += f;

  SUBCASE("checksum in the seek table") {
    auto entries = p.entries;
    entries[1].checksum ^= 1;
    const std::string bytes1 = frames + seek_table(entries);
    io::MemorySource file(kName, bytes1);
    auto source = PackedSource::open(file);
    REQUIRE(source.has_value());
    check_refused(read_all(**source), "packed frame 1: checksum mismatch");
    std::string out(10, '\0');
    CHECK((*source)->read_at(0, std::as_writable_bytes(std::span(out))).has_value());  // frame 0 is fine
  }
  SUBCASE("a flipped byte in the compressed data") {
    std::string file_bytes = p.file;
    file_bytes[p.frames[0].size() + p.frames[1].size() / 2] ^= 0x5A;
    io::MemorySource file(kName, file_bytes);
    auto source = PackedSource::open(file);
    REQUIRE(source.has_value());
    auto s = read_all(**source);
    REQUIRE_FALSE(s.has_value());
    CHECK(s.error().code == Code::bad_data);
    CHECK(s.error().message.find("packed frame 1") != std::string::npos);
  }
  SUBCASE("the table says fewer decoded bytes than the frame holds") {
    auto entries = p.entries;
    entries[0].size -= 1;
    const std::string bytes2 = frames + seek_table(entries);
    io::MemorySource file(kName, bytes2);
    auto source = PackedSource::open(file);
    REQUIRE(source.has_value());
    check_refused(read_all(**source), "packed frame 0: holds 8192 bytes but the seek table says 8191");
  }
  SUBCASE("two frames listed as one") {
    std::vector<Entry> entries{{static_cast<uint32_t>(p.frames[0].size() + p.frames[1].size()), 16384, 0},
                               p.entries[2]};
    const std::string bytes3 = frames + seek_table(entries, false);
    io::MemorySource file(kName, bytes3);
    auto source = PackedSource::open(file);
    REQUIRE(source.has_value());
    check_refused(read_all(**source), "not one zstd frame");
  }
  SUBCASE("a frame without a content size that decodes short") {
    // A streamed frame (no content size in its header) holding 8000 bytes, listed as 8192.
    ZSTD_CCtx* cctx = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 0);
    std::string out(ZSTD_compressBound(8000), '\0');
    out.resize(ZSTD_compress2(cctx, out.data(), out.size(), data.data(), 8000));
    ZSTD_freeCCtx(cctx);
    REQUIRE(ZSTD_getFrameContentSize(out.data(), out.size()) == ZSTD_CONTENTSIZE_UNKNOWN);
    const std::string bytes4 = out + seek_table({{static_cast<uint32_t>(out.size()), 8192, 0}}, false);
    io::MemorySource file(kName, bytes4);
    auto source = PackedSource::open(file);
    REQUIRE(source.has_value());
    check_refused(read_all(**source), "decodes to 8000 bytes but the seek table says 8192");
  }
  SUBCASE("a skippable frame listed as data") {
    std::string skip;
    append_u32(skip, 0x184D2A50);
    append_u32(skip, 100);
    skip += std::string(100, 'q');
    const std::string bytes5 = skip + seek_table({{static_cast<uint32_t>(skip.size()), 64, 0}}, false);
    io::MemorySource file(kName, bytes5);
    auto source = PackedSource::open(file);
    REQUIRE(source.has_value());
    auto s = read_all(**source);
    REQUIRE_FALSE(s.has_value());
    CHECK(s.error().code == Code::bad_data);
    CHECK(s.error().message.find("packed frame 0") != std::string::npos);
  }
}

TEST_CASE("a source that is not packed is refused at open") {
  const std::string bytes(1000, 'x');
  io::MemorySource file(kName, bytes);
  auto source = PackedSource::open(file);
  REQUIRE_FALSE(source.has_value());
  CHECK(source.error().code == Code::bad_data);
  CHECK(source.error().message.find("no seekable-format magic") != std::string::npos);
}

TEST_CASE("an owned inner source lives as long as the packed source") {
  const std::string data = noise_and_text(3000);
  const Packed p = pack(data, 1024);
  auto bytes = std::make_shared<std::string>(p.file);
  auto inner = std::make_unique<io::MemorySource>(kName, *bytes);
  auto source = PackedSource::open(std::move(inner));
  REQUIRE(source.has_value());
  CHECK(read(**source, 1000, 2000) == data.substr(1000, 2000));
  release_packed_decode_state();
  CHECK(read(**source, 1000, 2000) == data.substr(1000, 2000));
}
