// CRC-32 and SHA-256 (zlib, OpenSSL) as used through our wrappers, against independent
// implementations (zlib called directly, libsodium's SHA-256), on every length around the block
// boundaries, unaligned starts and split updates.
#include "util/checksum.hpp"

#include <doctest/doctest.h>
#include <sodium.h>
#include <zlib.h>

#include <random>
#include <vector>

namespace tensorinit {
namespace {

std::vector<std::byte> random_bytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::byte> out(n);
  for (auto& b : out) b = static_cast<std::byte>(rng());
  return out;
}

uint32_t zlib_crc(uint32_t crc, std::span<const std::byte> data) {
  return static_cast<uint32_t>(::crc32(crc, reinterpret_cast<const Bytef*>(data.data()), static_cast<uInt>(data.size())));
}

std::array<uint8_t, 32> sodium_sha(std::span<const std::byte> data) {
  std::array<uint8_t, 32> out;
  crypto_hash_sha256(out.data(), reinterpret_cast<const unsigned char*>(data.data()), data.size());
  return out;
}


}  // namespace

TEST_CASE("checksum: CRC-32 equals zlib's for every length, offset and starting value") {
  const auto data = random_bytes(70000, 1);
  {
    for (size_t offset : {0, 1, 7, 15}) {
      for (size_t n = 0; n < 300; ++n) {
        auto s = std::span(data).subspan(offset, n);
        REQUIRE_MESSAGE(crc32(0, s) == zlib_crc(0, s), "n=", n, " offset=", offset);
        REQUIRE(crc32(0xdeadbeef, s) == zlib_crc(0xdeadbeef, s));
      }
      for (size_t n : {4095, 4096, 4097, 65536, 69985}) {
        auto s = std::span(data).subspan(offset, n);
        REQUIRE(crc32(0, s) == zlib_crc(0, s));
      }
    }
    // Chained calls: crc32(crc32(0, a), b) == crc32(0, a + b).
    auto all = std::span(data);
    CHECK(crc32(crc32(0, all.first(1000)), all.subspan(1000)) == zlib_crc(0, all));
  }
  CHECK(crc32(0, {}) == 0);
  const std::string check = "123456789";  // the standard CRC-32 check value
  CHECK(crc32(0, std::as_bytes(std::span(check))) == 0xCBF43926u);
}

TEST_CASE("checksum: SHA-256 equals libsodium's for every length and split") {
  const auto data = random_bytes(10000, 2);
  {
    for (size_t n = 0; n < 300; ++n) {
      Sha256 h;
      h.update(std::span(data).subspan(3, n));
      REQUIRE_MESSAGE(h.finish() == sodium_sha(std::span(data).subspan(3, n)), "n=", n);
    }
    for (size_t split : {0, 1, 63, 64, 65, 200, 9999}) {
      Sha256 h;
      h.update(std::span(data).first(split));
      h.update(std::span(data).subspan(split, 1));
      h.update(std::span(data).subspan(split + 1));
      REQUIRE(h.finish() == sodium_sha(data));
    }
  }
  Sha256 empty;
  const auto digest = empty.finish();
  CHECK(digest[0] == 0xe3);  // e3b0c442...: SHA-256 of nothing
  CHECK(digest[31] == 0x55);
  CHECK(to_hex(digest) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(to_hex(std::array<uint8_t, 3>{0x00, 0x0f, 0xa0}) == "000fa0");
}

}  // namespace tensorinit
