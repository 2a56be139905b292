// Writes tensorizer files the way tensorizer's TensorSerializer lays them out (formats.md), so
// the real TensorDeserializer reads them: file header, an index block (256 KiB reserved, more
// if needed), then per tensor a record header holding CRC-32 and SHA-256 of header and data, and
// the data, then 8 zero bytes. Data version 1, 2 with types numpy lacks (bf16, fp8, F4 as
// float4_e2m1fn_x2), 4 with meta tensors, 5 (index entries tagged, u64 dimensions for tensors that
// need them) with a dimension of 2^32 or more; 3 (4, 5) when encrypting: XSalsa20-Poly1305 in 2 MiB
// chunks, SHA-256 of the plaintext only. For `tensorinit synth --format tensorizer` and for tests.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "format/tensorizer_crypt.hpp"
#include "util/checksum.hpp"
#include "util/error.hpp"

namespace tensorinit::format {

struct TensorizerTensor {
  std::string name;              // stored as is (a state-dict key)
  std::string dtype;             // safetensors vocabulary: BF16, F32, F8_E4M3, ...
  std::vector<uint64_t> shape;
  bool meta = false;             // no data in the file: loads as zeros (data version 4)
  uint8_t tensor_type = 0;       // 0 parameter, 1 buffer, 2 state_dict
};

struct TensorizerEncryption {
  const TensorizerKey* key = nullptr;       // must outlive the writer
  std::optional<KeyDerivation> derivation;  // recorded in every header (the key came from a passphrase)
  uint64_t chunk_size = 2ull << 20;         // tensorizer's
};

// The numpy dtype code tensorizer writes for a safetensors dtype ("<f4", "<V2\0torch.bfloat16"),
// or "" for one it cannot hold.
std::string tensorizer_dtype_code(std::string_view dtype);

// The layout of one file and its record headers. Thread-safe once made (const).
class TensorizerWriter {
 public:
  // Code::usage for a dtype tensorizer cannot hold or a shape too long; bad sizes overflow-checked.
  static Result<TensorizerWriter> make(std::vector<TensorizerTensor> tensors,
                                       std::optional<TensorizerEncryption> encryption = std::nullopt);

  const std::vector<TensorizerTensor>& tensors() const { return tensors_; }
  uint64_t file_size() const { return file_size_; }
  const std::string& head() const { return head_; }  // bytes [0, first record): file header and index
  uint64_t header_offset(size_t i) const { return records_[i].header_offset; }
  uint64_t data_offset(size_t i) const { return records_[i].header_offset + records_[i].header_len; }
  uint64_t data_bytes(size_t i) const { return records_[i].data_length; }
  uint64_t encryption_chunk() const { return encryption_ ? encryption_->chunk_size : 0; }

  // One tensor's record: add() its data in order (when encrypting, whole encryption chunks each
  // time but the last; the bytes are encrypted in place: write them as returned), then header()
  // gives the header to write at header_offset(i). Not thread-safe; one per tensor.
  class Record {
   public:
    void add(std::span<std::byte> data);
    std::string header();

   private:
    friend class TensorizerWriter;
    Record(const TensorizerWriter& writer, size_t index);
    const TensorizerWriter* writer_;
    size_t index_;
    uint64_t added_ = 0;
    uint32_t crc_ = 0;
    Sha256 sha_;
    std::array<uint8_t, 24> nonce_{};
    std::string macs_;
  };
  Record record(size_t i) const { return Record(*this, i); }

 private:
  struct Layout {
    uint64_t header_offset = 0;
    uint64_t header_len = 0;
    uint64_t data_length = 0;  // 0 for meta tensors
    std::string dtype_code;
    std::vector<uint64_t> stored_shape;  // F4: the last dimension halved (float4_e2m1fn_x2)
    bool long_shape = false;             // u64 dimensions (data version 5)
    bool encrypted = false;
  };
  static void put_shape(std::string& out, const Layout& r);
  TensorizerWriter() = default;
  std::string header_bytes(size_t i, uint32_t crc, std::span<const uint8_t> sha, std::span<const uint8_t> nonce,
                           std::string_view macs, bool hashed) const;

  std::vector<TensorizerTensor> tensors_;
  std::optional<TensorizerEncryption> encryption_;
  std::vector<Layout> records_;
  std::string head_;
  uint64_t file_size_ = 0;
};

// A whole file in memory: `data[i]` holds tensor i's bytes (ignored for meta tensors). Tests.
Result<std::string> write_tensorizer_bytes(const std::vector<TensorizerTensor>& tensors,
                                           const std::vector<std::string>& data,
                                           std::optional<TensorizerEncryption> encryption = std::nullopt);

}  // namespace tensorinit::format
