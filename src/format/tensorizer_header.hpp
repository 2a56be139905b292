// Little-endian field reading over an in-memory buffer, and the per-tensor header of a tensorizer
// record, decoded. Shared by the reader (tensorizer.cpp) and the checksum check.
#pragma once

#include <cstdint>
#include <cstring>
#include <fmt/format.h>
#include <string>
#include <string_view>
#include <vector>

#include "format/text.hpp"

namespace tensorinit::format::tensorizer_detail {

// A tensor name for a one-line message: 'name', or escaped ("a\nb", "a\xff") if it holds control
// bytes or is not valid UTF-8 (format/text.hpp).
inline std::string printable_name(std::string_view name) { return printable(name); }

// Dimensions of 2^32 or more are stored as u64 (data version 5, tensorizer's "long" tensors):
// in the index when its entry is tagged 5, in the record header when the index entry is.
inline constexpr uint64_t kLongDimension = uint64_t{1} << 32;

// Reads fields front to back; every read is bounds-checked and a failed one leaves `ok` false
// (then every later read fails too), so a parser checks once at the end of a group of reads.
class FieldReader {
 public:
  explicit FieldReader(std::string_view bytes) : bytes_(bytes) {}

  template <class T>
  T read() {
    T value{};
    if (!ok_ || bytes_.size() - at_ < sizeof(T)) {
      ok_ = false;
      return value;
    }
    std::memcpy(&value, bytes_.data() + at_, sizeof(T));  // little-endian on every target we build for
    at_ += sizeof(T);
    return value;
  }

  std::string_view take(size_t n) {
    if (!ok_ || bytes_.size() - at_ < n) {
      ok_ = false;
      return {};
    }
    std::string_view out = bytes_.substr(at_, n);
    at_ += n;
    return out;
  }

  bool ok() const { return ok_; }
  size_t at() const { return at_; }
  size_t left() const { return bytes_.size() - at_; }

 private:
  std::string_view bytes_;
  size_t at_ = 0;
  bool ok_ = true;
};

struct StoredHash {
  uint8_t type = 0;             // 0 CRC-32, 1 SHA-256, others unknown (skipped)
  size_t value_offset = 0;      // within the header
  std::string_view value;
};

// crypt_info chunk types and key derivation methods (tensorizer's _crypt_info.py).
inline constexpr uint16_t kKeyDerivationChunk = 1;   // u16 method; method 1: Argon2id via crypto_pwhash
inline constexpr uint16_t kParallelCipherChunk = 2;  // u64 chunk_size, nonce, u64 mac_count, MACs
inline constexpr uint16_t kWholeCipherChunk = 3;     // nonce, MAC: one secretbox over all the data
inline constexpr uint16_t kPwhashMethod = 1;
inline constexpr size_t kNonceBytes = 24;
inline constexpr size_t kMacBytes = 16;

// The crypt_info block of an encrypted file's record header, decoded (views into the header).
struct CryptInfo {
  size_t begin = 0, end = 0;  // the block within the header (u64 length included): not hashed
  bool encrypted = false;     // a cipher chunk is present (meta tensors carry an empty block)
  bool whole = false;         // type 3: one MAC for all the data
  uint64_t chunk_size = 0;    // type 2: bytes per MAC
  std::string_view nonce;     // 24 bytes; chunk i uses it incremented i times (little-endian)
  std::string_view macs;      // mac_count x 16 bytes
  bool derived = false;       // a key derivation chunk is present
  uint64_t opslimit = 0, memlimit = 0;
  int32_t alg = 0;
  std::string_view salt;
};

// A per-tensor header; crypt_info is decoded only where the file says headers carry it (data
// version 3, or 4 and 5 with the encrypted flag); dimensions are u64 for long tensors.
struct RecordHeader {
  uint64_t header_len = 0;
  uint16_t module_idx = 0;
  uint8_t tensor_type = 0;
  std::string_view name;
  std::string_view dtype;
  std::vector<uint64_t> shape;
  std::vector<StoredHash> hashes;
  bool has_crypt_info = false;
  CryptInfo crypt;
  int64_t data_length = 0;
};

// One crypt_info chunk body (after its u64 length). Empty string on success, else the fault.
inline std::string_view decode_crypt_chunk(std::string_view body, CryptInfo& c) {
  FieldReader in(body);
  const uint16_t type = in.read<uint16_t>();
  if (!in.ok()) return "crypt_info chunk shorter than its type";
  if (type == kKeyDerivationChunk) {
    if (c.derived) return "crypt_info holds two key derivation chunks";
    const uint16_t method = in.read<uint16_t>();
    if (in.ok() && method != kPwhashMethod) return "crypt_info names an unknown key derivation method";
    c.opslimit = in.read<uint64_t>();
    c.memlimit = in.read<uint64_t>();
    c.alg = in.read<int32_t>();
    c.salt = in.take(in.read<uint16_t>());
    c.derived = true;
  } else if (type == kParallelCipherChunk || type == kWholeCipherChunk) {
    if (c.encrypted) return "crypt_info holds two encryption chunks";
    c.encrypted = true;
    c.whole = type == kWholeCipherChunk;
    if (!c.whole) c.chunk_size = in.read<uint64_t>();
    c.nonce = in.take(kNonceBytes);
    if (c.whole) {
      c.macs = in.take(kMacBytes);
    } else {
      const uint64_t count = in.read<uint64_t>();
      if (in.ok() && count > in.left() / kMacBytes) return "crypt_info MAC count runs past its chunk";
      c.macs = in.take(count * kMacBytes);
    }
  } else {
    return "crypt_info holds an unknown chunk type";
  }
  if (!in.ok() || in.left() != 0) return "crypt_info chunk length disagrees with its fields";
  return {};
}

// Decodes `bytes` (exactly header_len bytes). Returns an empty string on success, else what is
// wrong (for the caller's message).
inline std::string_view decode_record_header(std::string_view bytes, RecordHeader& h, bool crypt_info = false,
                                             bool long_shape = false) {
  FieldReader in(bytes);
  h.header_len = in.read<uint64_t>();
  h.module_idx = in.read<uint16_t>();
  h.tensor_type = in.read<uint8_t>();
  h.name = in.take(in.read<uint16_t>());
  h.dtype = in.take(in.read<uint8_t>());
  const uint8_t ndim = in.read<uint8_t>();
  for (uint8_t i = 0; i < ndim && in.ok(); ++i) h.shape.push_back(long_shape ? in.read<uint64_t>() : in.read<uint32_t>());
  const uint16_t hash_len = in.read<uint16_t>();
  const size_t hash_start = in.at();
  std::string_view section = in.take(hash_len);
  if (!in.ok()) return "header ends inside its name, dtype, shape or hash section";
  FieldReader hashes(section);
  const uint8_t count = hashes.read<uint8_t>();
  for (uint8_t i = 0; i < count && hashes.ok(); ++i) {
    StoredHash hash;
    hash.type = hashes.read<uint8_t>();
    const uint8_t len = hashes.read<uint8_t>();
    hash.value_offset = hash_start + hashes.at();
    hash.value = hashes.take(len);
    if (hash.type == 0 && len != 4) return "CRC-32 hash is not 4 bytes";
    if (hash.type == 1 && len != 32) return "SHA-256 hash is not 32 bytes";
    h.hashes.push_back(hash);
  }
  if (!hashes.ok() || hashes.left() != 0) return "hash section length disagrees with its entries";
  h.has_crypt_info = crypt_info;
  if (crypt_info) {
    h.crypt.begin = in.at();
    const uint64_t block_len = in.read<uint64_t>();
    if (in.ok() && block_len > in.left()) return "crypt_info runs past the header";
    FieldReader block(in.take(block_len));
    h.crypt.end = in.at();
    const uint16_t chunks = block.read<uint16_t>();
    for (uint16_t i = 0; i < chunks && block.ok(); ++i) {
      const uint64_t chunk_len = block.read<uint64_t>();
      if (!block.ok() || chunk_len > block.left()) return "crypt_info chunk runs past its block";
      if (auto fault = decode_crypt_chunk(block.take(chunk_len), h.crypt); !fault.empty()) return fault;
    }
    if (!block.ok() || block.left() != 0) return "crypt_info length disagrees with its chunks";
  }
  h.data_length = in.read<int64_t>();
  if (!in.ok() || in.left() != 0) return "header length disagrees with its fields";
  return {};
}

}  // namespace tensorinit::format::tensorizer_detail
