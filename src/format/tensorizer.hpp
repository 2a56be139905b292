// Tensorizer (.tensors, CoreWeave), data versions 1 to 4: a 73-byte file header, an index block
// giving every tensor's header and data offsets, then the records (per-tensor header + data).
// The index is read whole; each per-tensor header is cross-checked against it, so a file whose
// index and records disagree is refused before anything is staged. Layout: formats.md.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "format/tensor_index.hpp"
#include "io/byte_source.hpp"
#include "util/error.hpp"

namespace tensorinit::format {

inline constexpr uint64_t kTensorizerFileHeader = 73;
// Writers reserve 256 KiB; 100 MB would index about a million tensors (as kMaxSafetensorsHeader).
inline constexpr uint64_t kMaxTensorizerIndex = 100'000'000;

struct TensorizerLayout {
  uint32_t version = 0;
  uint64_t index_end = 0;            // 73 + the index block length
  uint64_t data_end = 0;             // end of the last record (the file may hold a trailer after it)
  std::vector<TensorEntry> tensors;  // sorted by file offset; `file` left 0; header_offset set
};

// Reads and checks the index and every per-tensor header through `source` (one read for the
// index, one per tensor header). Errors name source.name() and the fault:
//   Code::no_source  incomplete: the file is shorter than its header or index describes
//   Code::bad_data   anything malformed or inconsistent, an unsupported version, or an encrypted
//                    file ("encrypted: set model.key"; decryption is not implemented yet)
Result<TensorizerLayout> read_tensorizer(const io::ByteSource& source);

// A numpy dtype code as tensorizer writes it ("<f4", "<V2\0torch.bfloat16") in the safetensors
// vocabulary, or an empty string when it names nothing we know.
std::string tensorizer_dtype(std::string_view code);

// A stored tensor name as a state-dict key: ".mask" -> "mask", "\x1e[\"a\",0,\"b\"]" -> "a.0.b".
// Empty when the name is not a valid tensor path.
std::string tensorizer_state_dict_key(std::string_view stored);

// `model.verify: checksums`: recomputes the CRC-32 (zlib) and SHA-256 that tensorizer stores in
// the tensor's header (over the header with the hash values zeroed, then the data) and compares.
// `data` is the tensor's bytes as staged (t.bytes long; ignored for zeros tensors, whose data in
// the file is empty). Reads the header through `source`. A header carrying neither hash passes
// (nothing to check). Mismatch: Code::bad_data naming the file and the tensor. Thread-safe.
Status verify_tensorizer_checksums(const io::ByteSource& source, const TensorEntry& t,
                                   std::span<const std::byte> data);

}  // namespace tensorinit::format
