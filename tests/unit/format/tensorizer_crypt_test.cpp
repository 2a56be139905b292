// Tensorizer encryption and the writer: keys as model.key gives them, nonces as libsodium
// increments them, files written here read back (checksums verified, encrypted data decrypted
// chunk by chunk), and broken crypt_info refused. Real tensorizer files: the committed fixtures
// (tests/fixtures/tensorizer-*.tensors) and tests/integration/test_tensorizer_crypt.sh.
#include <doctest/doctest.h>
#include <sodium.h>

#include <cstring>
#include <random>

#include "io/memory_source.hpp"
#include "format/tensorizer.hpp"
#include "format/tensorizer_crypt.hpp"
#include "format/tensorizer_header.hpp"
#include "format/tensorizer_writer.hpp"
#include "test_files.hpp"

namespace tensorinit::format {
namespace {

const std::string kKeyHex = "5be7c4f1a09d3e26b8f05a7c1d92e4b36a0f8c5d7e19b2a4c6d8e0f1a3b5c7d9";  // the fixtures' test key

std::string random_string(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string out(n, '\0');
  for (auto& c : out) c = static_cast<char>(rng());
  return out;
}

TensorizerKey key_from(const std::string& text) {
  auto key = TensorizerKey::parse(Secret(text));
  REQUIRE_MESSAGE(key.has_value(), key.error().message);
  return std::move(*key);
}

std::string key_bytes(const TensorizerKey& key) { return std::string(reinterpret_cast<const char*>(key.bytes()), 32); }

// Tensors of every kind the writer handles, and their data.
struct Sample {
  std::vector<TensorizerTensor> tensors{
      {.name = "embed.weight", .dtype = "BF16", .shape = {37, 16}},
      {.name = "norm", .dtype = "F32", .shape = {5}},
      {.name = "q8", .dtype = "F8_E4M3", .shape = {3, 3}, .tensor_type = 1},
      {.name = "ghost", .dtype = "F16", .shape = {4, 2}, .meta = true},
      {.name = "big", .dtype = "U8", .shape = {5000}},
      {.name = "one", .dtype = "I8", .shape = {1}},
  };
  std::vector<std::string> data{random_string(37 * 16 * 2, 1), random_string(20, 2), random_string(9, 3), "",
                                random_string(5000, 4), "x"};
};

Result<TensorizerLayout> read(const std::string& bytes) {
  io::MemorySource source("w.tensors", bytes);
  return read_tensorizer(source);
}

std::vector<TensorizerRecord> records_of(const std::string& bytes, const TensorizerLayout& layout) {
  io::MemorySource source("w.tensors", bytes);
  std::vector<const TensorEntry*> tensors;
  for (const auto& t : layout.tensors) tensors.push_back(&t);
  auto records = read_tensorizer_records(source, tensors);
  REQUIRE_MESSAGE(records.has_value(), records.error().message);
  return std::move(*records);
}

}  // namespace

TEST_CASE("tensorizer crypt: model.key in hex or base64, never echoed") {
  const TensorizerKey hex = key_from(kKeyHex);
  CHECK(key_bytes(key_from("  " + kKeyHex + "\n")) == key_bytes(hex));
  std::string upper = kKeyHex;
  for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  CHECK(key_bytes(key_from(upper)) == key_bytes(hex));
  char b64[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_ORIGINAL)];
  for (int variant : {sodium_base64_VARIANT_ORIGINAL, sodium_base64_VARIANT_ORIGINAL_NO_PADDING,
                      sodium_base64_VARIANT_URLSAFE, sodium_base64_VARIANT_URLSAFE_NO_PADDING}) {
    sodium_bin2base64(b64, sizeof b64, hex.bytes(), 32, variant);
    CHECK_MESSAGE(key_bytes(key_from(b64)) == key_bytes(hex), b64);
  }
  for (const std::string& bad : {kKeyHex.substr(2), kKeyHex + "00", std::string(64, 'g'), std::string("c2VjcmV0"),
                                std::string(), std::string("not a key at all, but long enough to be one maybe")}) {
    auto key = TensorizerKey::parse(Secret(bad));
    REQUIRE_FALSE(key.has_value());
    CHECK(key.error().code == Code::bad_manifest);
    CHECK(key.error().message.find("model.key") != std::string::npos);
    if (!bad.empty()) CHECK_MESSAGE(key.error().message.find(bad) == std::string::npos, key.error().message);
  }
}

TEST_CASE("tensorizer crypt: chunk nonces are the first one incremented as libsodium does") {
  std::array<uint8_t, 24> first{};
  for (size_t i = 0; i < first.size(); ++i) first[i] = i < 3 ? 0xfe : static_cast<uint8_t>(i * 37);
  std::array<uint8_t, 24> stepped = first;
  for (uint64_t index = 0; index < 70000; ++index) {
    if (index % 997 == 0 || index < 600) REQUIRE(tensorizer_chunk_nonce(first, index) == stepped);
    sodium_increment(stepped.data(), stepped.size());
  }
  std::array<uint8_t, 24> all_ones;
  all_ones.fill(0xff);
  CHECK(tensorizer_chunk_nonce(all_ones, 1) == std::array<uint8_t, 24>{});  // wraps, as sodium_increment
}

TEST_CASE("tensorizer writer: files read back with every checksum verified") {
  Sample s;
  auto bytes = write_tensorizer_bytes(s.tensors, s.data);
  REQUIRE_MESSAGE(bytes.has_value(), bytes.error().message);
  auto layout = read(*bytes);
  REQUIRE_MESSAGE(layout.has_value(), layout.error().message);
  CHECK(layout->version == 4);  // meta tensor
  CHECK_FALSE(layout->crypt_info);
  REQUIRE(layout->tensors.size() == s.tensors.size());
  io::MemorySource source("w.tensors", *bytes);
  for (const auto& t : layout->tensors) {
    const size_t i = std::find_if(s.tensors.begin(), s.tensors.end(), [&](auto& x) { return x.name == t.name; }) -
                     s.tensors.begin();
    REQUIRE(i < s.tensors.size());
    CHECK(t.zeros == s.tensors[i].meta);
    CHECK_FALSE(t.encrypted);
    if (!t.zeros) CHECK(bytes->substr(t.file_offset, t.bytes) == s.data[i]);
    auto ok = verify_tensorizer_checksums(source, t, std::as_bytes(std::span(*bytes).subspan(t.zeros ? 0 : t.file_offset,
                                                                                               t.zeros ? 0 : t.bytes)));
    CHECK_MESSAGE(ok.has_value(), t.name, ": ", ok.error().message);
  }
  CHECK(layout->tensors[0].dtype == "BF16");
  // Data version 2 without meta tensors (bf16 and fp8 are opaque to numpy), 1 with plain types only.
  Sample no_meta;
  no_meta.tensors.erase(no_meta.tensors.begin() + 3);
  no_meta.data.erase(no_meta.data.begin() + 3);
  CHECK(read(*write_tensorizer_bytes(no_meta.tensors, no_meta.data))->version == 2);
  CHECK(read(*write_tensorizer_bytes({{.name = "a", .dtype = "F32", .shape = {1}}}, {"abcd"}))->version == 1);
  auto refused = TensorizerWriter::make({{.name = "c", .dtype = "F6_E2M3", .shape = {4}}});  // torch has no fp6
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().message.find("dtype F6_E2M3") != std::string::npos);
}

TEST_CASE("tensorizer writer and crypt: encrypted data decrypts chunk by chunk with the right key only") {
  Sample s;
  const TensorizerKey key = key_from(kKeyHex);
  const TensorizerKey other = key_from(std::string(64, 'a'));
  auto bytes = write_tensorizer_bytes(s.tensors, s.data, TensorizerEncryption{.key = &key, .chunk_size = 1024});
  REQUIRE_MESSAGE(bytes.has_value(), bytes.error().message);
  auto layout = read(*bytes);
  REQUIRE_MESSAGE(layout.has_value(), layout.error().message);
  CHECK(layout->version == 4);
  CHECK(layout->crypt_info);
  const auto records = records_of(*bytes, *layout);
  for (size_t k = 0; k < layout->tensors.size(); ++k) {
    const auto& t = layout->tensors[k];
    const size_t i = std::find_if(s.tensors.begin(), s.tensors.end(), [&](auto& x) { return x.name == t.name; }) -
                     s.tensors.begin();
    CHECK(t.encrypted == !s.tensors[i].meta);
    const auto& r = records[k];
    CHECK(r.crc32.has_value() == !t.encrypted);  // encrypted records carry SHA-256 only
    REQUIRE(r.sha256.has_value());
    if (t.zeros) continue;
    REQUIRE(r.cipher.has_value());
    CHECK(r.cipher->chunks() == (t.bytes + 1023) / 1024);
    std::string data = bytes->substr(t.file_offset, t.bytes);
    CHECK(data != s.data[i]);
    std::string wrong = data;
    CHECK_FALSE(open_tensorizer_chunk(other, *r.cipher, 0, std::as_writable_bytes(std::span(wrong)).first(std::min<size_t>(1024, t.bytes))));
    TensorizerChecksums check(r);
    for (uint64_t c = 0; c < r.cipher->chunks(); ++c) {
      auto part = std::as_writable_bytes(std::span(data)).subspan(c * 1024, std::min<uint64_t>(1024, t.bytes - c * 1024));
      REQUIRE(open_tensorizer_chunk(key, *r.cipher, c, part));
      check.update(part);
    }
    CHECK(data == s.data[i]);
    auto ok = check.finish("w.tensors", t.name);  // SHA-256 of the plaintext
    CHECK_MESSAGE(ok.has_value(), ok.error().message);
    // A chunk decrypted under another chunk's nonce fails its MAC.
    if (r.cipher->chunks() > 1) {
      std::string again = bytes->substr(t.file_offset, 1024);
      CHECK_FALSE(open_tensorizer_chunk(key, *r.cipher, 1, std::as_writable_bytes(std::span(again))));
    }
  }
}

TEST_CASE("tensorizer crypt: a passphrase derives the key with the file's Argon2id parameters") {
  const KeyDerivation how{.opslimit = crypto_pwhash_OPSLIMIT_MIN, .memlimit = crypto_pwhash_MEMLIMIT_MIN,
                          .alg = crypto_pwhash_ALG_ARGON2ID13, .salt = std::string(16, 's')};
  auto key = TensorizerKey::derive(Secret("correct horse"), how);
  REQUIRE_MESSAGE(key.has_value(), key.error().message);
  unsigned char want[32];
  REQUIRE(crypto_pwhash(want, 32, "correct horse", 13, reinterpret_cast<const unsigned char*>(how.salt.data()),
                        how.opslimit, how.memlimit, how.alg) == 0);
  CHECK(key_bytes(*key) == std::string(reinterpret_cast<char*>(want), 32));
  Sample s;
  auto bytes = write_tensorizer_bytes(s.tensors, s.data, TensorizerEncryption{.key = &*key, .derivation = how});
  REQUIRE(bytes.has_value());
  auto layout = read(*bytes);
  REQUIRE_MESSAGE(layout.has_value(), layout.error().message);
  for (const auto& r : records_of(*bytes, *layout))
    if (r.cipher) CHECK(r.cipher->derivation == how);
  // Parameters tensorizer never writes, or that would exhaust the machine, are refused.
  for (auto change : {+[](KeyDerivation& d) { d.alg = 1; }, +[](KeyDerivation& d) { d.salt = "short"; },
                      +[](KeyDerivation& d) { d.memlimit = 64ull << 30; }, +[](KeyDerivation& d) { d.opslimit = 1000; }}) {
    KeyDerivation bad = how;
    change(bad);
    auto refused = TensorizerKey::derive(Secret("correct horse"), bad);
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().code == Code::bad_data);
    CHECK(refused.error().message.find("correct horse") == std::string::npos);
  }
}

TEST_CASE("tensorizer crypt: broken crypt_info is refused, naming the tensor") {
  Sample s;
  const TensorizerKey key = key_from(kKeyHex);
  auto good = write_tensorizer_bytes(s.tensors, s.data, TensorizerEncryption{.key = &key, .chunk_size = 1024});
  REQUIRE(good.has_value());
  auto layout = read(*good);
  REQUIRE(layout.has_value());
  auto big = std::find_if(layout->tensors.begin(), layout->tensors.end(), [](auto& t) { return t.name == "big"; });
  REQUIRE(big != layout->tensors.end());
  std::string header = good->substr(big->header_offset, big->file_offset - big->header_offset);
  tensorizer_detail::RecordHeader h;
  REQUIRE(tensorizer_detail::decode_record_header(header, h, true).empty());
  REQUIRE(h.crypt.encrypted);
  CHECK(h.crypt.chunk_size == 1024);
  CHECK(h.crypt.macs.size() == 5 * 16);
  // The cipher chunk's fields sit just before the nonce: u16 type, u64 chunk_size.
  const size_t nonce_at = big->header_offset + (h.crypt.nonce.data() - header.data());
  auto patched = [&](size_t at, auto value) {
    std::string b = *good;
    std::memcpy(b.data() + at, &value, sizeof value);
    return b;
  };
  auto expect = [](const Result<TensorizerLayout>& r, std::string_view fragment) {
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == Code::bad_data);
    CHECK_MESSAGE(r.error().message.find("tensor 'big'") != std::string::npos, r.error().message);
    CHECK_MESSAGE(r.error().message.find(fragment) != std::string::npos, r.error().message);
  };
  expect(read(patched(nonce_at - 8, uint64_t{2048})), "MAC count does not match");
  expect(read(patched(nonce_at - 8, uint64_t{1000})), "multiple of 64");
  expect(read(patched(nonce_at - 10, uint16_t{9})), "unknown chunk type");
  expect(read(patched(nonce_at + 24, uint64_t{1} << 40)), "MAC count runs past");
}

}  // namespace tensorinit::format
