// Little-endian field reading over an in-memory buffer, and the per-tensor header of a tensorizer
// record, decoded. Shared by the reader (tensorizer.cpp) and the checksum check.
#pragma once

#include <cstdint>
#include <cstring>
#include <fmt/format.h>
#include <string>
#include <string_view>
#include <vector>

namespace tensorinit::format::tensorizer_detail {

// A tensor name for a one-line message: 'name', or escaped ("a\nb") if it holds control bytes.
inline std::string printable_name(std::string_view name) {
  for (unsigned char c : name)
    if (c < 0x20 || c == 0x7f) return fmt::format("{:?}", name);
  return fmt::format("'{}'", name);
}

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

// A per-tensor header without crypt_info (unencrypted files).
struct RecordHeader {
  uint64_t header_len = 0;
  uint16_t module_idx = 0;
  uint8_t tensor_type = 0;
  std::string_view name;
  std::string_view dtype;
  std::vector<uint64_t> shape;
  std::vector<StoredHash> hashes;
  int64_t data_length = 0;
};

// Decodes `bytes` (exactly header_len bytes). Returns an empty string on success, else what is
// wrong (for the caller's message).
inline std::string_view decode_record_header(std::string_view bytes, RecordHeader& h) {
  FieldReader in(bytes);
  h.header_len = in.read<uint64_t>();
  h.module_idx = in.read<uint16_t>();
  h.tensor_type = in.read<uint8_t>();
  h.name = in.take(in.read<uint16_t>());
  h.dtype = in.take(in.read<uint8_t>());
  const uint8_t ndim = in.read<uint8_t>();
  for (uint8_t i = 0; i < ndim && in.ok(); ++i) h.shape.push_back(in.read<uint32_t>());
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
  h.data_length = in.read<int64_t>();
  if (!in.ok() || in.left() != 0) return "header length disagrees with its fields";
  return {};
}

}  // namespace tensorinit::format::tensorizer_detail
