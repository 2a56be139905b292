// Tensorizer (.tensors, CoreWeave), data versions 1 to 5: a 73-byte file header, an index block
// giving every tensor's header and data offsets, then the records (per-tensor header + data).
// The index is read whole; each per-tensor header is cross-checked against it, so a file whose
// index and records disagree is refused before anything is staged. Layout: formats.md.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "format/tensor_index.hpp"
#include "format/tensorizer_crypt.hpp"
#include "io/byte_source.hpp"
#include "util/checksum.hpp"
#include "util/error.hpp"

namespace tensorinit::format {

inline constexpr uint64_t kTensorizerFileHeader = 73;
// Writers reserve 256 KiB; 100 MB would index about a million tensors (as kMaxSafetensorsHeader).
inline constexpr uint64_t kMaxTensorizerIndex = 100'000'000;

struct TensorizerLayout {
  uint32_t version = 0;
  uint64_t index_end = 0;            // 73 + the index block length
  uint64_t data_end = 0;             // end of the last record (the file may hold a trailer after it)
  bool crypt_info = false;           // headers carry crypt_info (version 3, or 4 and 5 flagged encrypted)
  std::vector<TensorEntry> tensors;  // sorted by file offset; `file` left 0; header_offset set
};

// Reads and checks the index and every per-tensor header through `source` (one read for the
// index, one per tensor header). Errors name source.name() and the fault:
//   Code::no_source  incomplete: the file is shorter than its header or index describes
//   Code::bad_data   anything malformed or inconsistent, or an unsupported version
// Encrypted files index without a key (the index and headers are not encrypted): their tensors
// have `encrypted` set; staging decrypts them (stage/tensorizer_reads.hpp).
Result<TensorizerLayout> read_tensorizer(const io::ByteSource& source);

// A numpy dtype code as tensorizer writes it ("<f4", "<V2\0torch.bfloat16") in the safetensors
// vocabulary, or an empty string when it names nothing we know.
std::string tensorizer_dtype(std::string_view code);

// A stored tensor name as a state-dict key: ".mask" -> "mask", "\x1e[\"a\",0,\"b\"]" -> "a.0.b".
// Empty when the name is not a valid tensor path.
std::string tensorizer_state_dict_key(std::string_view stored);

// What staging needs from one tensor's record header: the bytes its checksums start with, the
// stored checksums, and how its data is encrypted.
struct TensorizerRecord {
  std::string hashed_header;                    // the header, hash values zeroed, crypt_info left out
  std::optional<uint32_t> crc32;
  std::optional<std::array<uint8_t, 32>> sha256;
  std::optional<TensorizerCipher> cipher;       // encrypted data
};

// Reads the record headers of `tensors` (entries read_tensorizer produced for `source`), in that
// order: one read for the file header, one per tensor. Code::bad_data if a header changed since
// it was indexed. Thread-safe.
Result<std::vector<TensorizerRecord>> read_tensorizer_records(const io::ByteSource& source,
                                                              std::span<const TensorEntry* const> tensors);

// A running check of one record's checksums: the header, then the tensor's (decrypted) data fed
// in order; finish() compares. A record without stored checksums passes. Not thread-safe.
class TensorizerChecksums {
 public:
  explicit TensorizerChecksums(const TensorizerRecord& record);
  void update(std::span<const std::byte> data);
  // Mismatch: Code::bad_data "FILE: tensor 'NAME': SHA-256 mismatch (stored ..., computed ...)".
  Status finish(std::string_view file, std::string_view tensor);

 private:
  const TensorizerRecord* record_;
  uint32_t crc_ = 0;
  Sha256 sha_;
};

// `model.verify: checksums`: recomputes the CRC-32 (zlib) and SHA-256 that tensorizer stores in
// the tensor's header (over the header with the hash values zeroed, then the data) and compares.
// `data` is the tensor's bytes as staged (t.bytes long, decrypted; ignored for zeros tensors,
// whose data in the file is empty). Reads the headers through `source`. A header carrying neither hash passes
// (nothing to check). Mismatch: Code::bad_data naming the file and the tensor. Thread-safe.
Status verify_tensorizer_checksums(const io::ByteSource& source, const TensorEntry& t,
                                   std::span<const std::byte> data);

}  // namespace tensorinit::format
