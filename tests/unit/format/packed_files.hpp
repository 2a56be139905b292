// Test support for packed files: builds them by hand (zstd frames from libzstd, the seek table
// and the metadata frame written here byte by byte, independently of src/format/packed_table.cpp),
// so that tests can state lies and corruptions freely.
#pragma once

#include <zstd.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace tensorinit::testing {

inline void append_u32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

inline uint32_t xxh64_low(std::string_view bytes) { return static_cast<uint32_t>(XXH64(bytes.data(), bytes.size(), 0)); }

inline std::string zstd_frame(std::string_view data, int level = 1) {
  std::string out(ZSTD_compressBound(data.size()), '\0');
  const size_t n = ZSTD_compress(out.data(), out.size(), data.data(), data.size(), level);
  if (ZSTD_isError(n)) throw std::runtime_error(ZSTD_getErrorName(n));
  out.resize(n);
  return out;
}

struct Entry {
  uint32_t stored = 0;
  uint32_t size = 0;
  uint32_t checksum = 0;
};

// The seek table's skippable frame, as the spec lays it out.
inline std::string seek_table(const std::vector<Entry>& entries, bool checksums = true, uint8_t descriptor_extra = 0) {
  std::string body;
  for (const auto& e : entries) {
    append_u32(body, e.stored);
    append_u32(body, e.size);
    if (checksums) append_u32(body, e.checksum);
  }
  append_u32(body, static_cast<uint32_t>(entries.size()));
  body.push_back(static_cast<char>((checksums ? 0x80 : 0) | descriptor_extra));
  append_u32(body, 0x8F92EAB1);
  std::string out;
  append_u32(out, 0x184D2A5E);
  append_u32(out, static_cast<uint32_t>(body.size()));
  return out + body;
}

// tensorinit's metadata frame: "TIPACK01", the frame count, a checksum, one transform per frame.
inline std::string meta_frame(const std::vector<uint8_t>& transforms) {
  std::string t(transforms.begin(), transforms.end());
  std::string out;
  append_u32(out, 0x184D2A5B);
  append_u32(out, static_cast<uint32_t>(16 + t.size()));
  out += "TIPACK01";
  append_u32(out, static_cast<uint32_t>(t.size()));
  append_u32(out, xxh64_low(t));
  return out + t;
}

// Byte planes computed the slow, obvious way (the oracle for packed_transform.cpp).
inline std::string naive_planes(std::string_view in, unsigned k) {
  const size_t m = in.size() / k;
  std::string out;
  for (unsigned p = 0; p < k; ++p)
    for (size_t j = 0; j < m; ++j) out.push_back(in[j * k + p]);
  out.append(in.substr(m * k));
  return out;
}

// A packed file of `data` in frames of `frame` bytes. transforms[i] (if given) stores frame i as
// byte planes of that stride, listed in a metadata frame.
struct Packed {
  std::string file;
  std::vector<Entry> entries;
  std::vector<std::string> frames;  // compressed, in order
};
inline Packed pack(std::string_view data, size_t frame, const std::vector<uint8_t>& transforms = {},
                   bool checksums = true) {
  Packed p;
  for (size_t at = 0, i = 0; at < data.size(); at += frame, ++i) {
    std::string part(data.substr(at, frame));
    if (i < transforms.size() && transforms[i]) part = naive_planes(part, transforms[i]);
    p.frames.push_back(zstd_frame(part));
    p.entries.push_back({static_cast<uint32_t>(p.frames.back().size()), static_cast<uint32_t>(part.size()), xxh64_low(part)});
    p.file += p.frames.back();
  }
  if (!transforms.empty()) {
    const std::string meta = meta_frame(transforms);
    p.entries.push_back({static_cast<uint32_t>(meta.size()), 0, xxh64_low("")});
    p.file += meta;
  }
  p.file += seek_table(p.entries, checksums);
  return p;
}

// Values like trained weights: N(0, 0.02) as bf16 (the top half of an f32), little-endian.
inline std::string bf16_weights(size_t count, uint32_t seed = 1) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  std::string out(2 * count, '\0');
  for (size_t i = 0; i < count; ++i) {
    float v = normal(rng);
    uint32_t bits;
    std::memcpy(&bits, &v, 4);
    out[2 * i] = static_cast<char>((bits >> 16) & 0xFF);
    out[2 * i + 1] = static_cast<char>(bits >> 24);
  }
  return out;
}

}  // namespace tensorinit::testing
