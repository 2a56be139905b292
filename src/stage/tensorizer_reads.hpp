// Tensorizer files that need more than a copy: `model.verify: checksums` (tensorizer's CRC-32 and
// SHA-256 per tensor) and encrypted tensors (decrypted with model.key or model.passphrase). Both
// happen in the readers' staging buffers, between the read and the sink, so they work the same
// for every target: the host arena, the cuda sink's pinned buffers, and (checksums only: the
// page cache refuses encrypted files, stage/destination.hpp) the page cache, where the reads
// themselves fill the cache.
//
// The read plan is built for it (plan_reads is not used):
// - an encrypted tensor is read in whole encryption chunks (tensorizer: 2 MiB, each with its own
//   MAC), several to a read, so every MAC is checked before its bytes reach the sink;
// - with checksums, a tensor is one work item: one reader reads its chunks in order and hashes
//   as it goes (SHA-256 cannot be split), while other readers take other tensors. Items run
//   largest first, so the biggest tensor is not left for last. Without checksums every read is
//   an item of its own (decryption parallel within a tensor too);
// - tensors smaller than a chunk share reads, each whole within one.
// A wrong key, an altered byte or a checksum mismatch fails the pipeline: nothing is published
// (the host arena is removed, device memory freed).
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "format/tensor_index.hpp"
#include "format/tensorizer.hpp"
#include "io/byte_source.hpp"
#include "stage/layout.hpp"
#include "stage/pipeline.hpp"
#include "stage/request.hpp"

namespace tensorinit::stage {

class TensorizerReads final : public ChunkFilter {
 public:
  // nullptr when plain reads will do: not a tensorizer model, or nothing to check or decrypt.
  // Reads every record header (one read each) and resolves keys (a passphrase is stretched once
  // per distinct salt). Errors: Code::bad_data "FILE: encrypted: set model.key ..." when a key
  // is needed and none is given; Code::bad_manifest for a malformed model.key, or an encryption
  // chunk larger than `memory_limit`. An encryption chunk larger than `chunk_size` is read whole
  // (MACs cover whole chunks): chunk_size() then says how large the readers' buffers must be.
  // `files` are index.files' sources, in order.
  static Result<std::unique_ptr<TensorizerReads>> prepare(const TensorChecks& checks, const format::ModelIndex& index,
                                                          const ArenaLayout& layout, uint64_t chunk_size,
                                                          std::span<const io::ByteSource* const> files,
                                                          uint64_t memory_limit);

  const ReadPlan& plan() const { return plan_; }
  // The largest read of plan(): the chunk_size given, or an encryption chunk above it.
  uint64_t chunk_size() const { return chunk_size_; }
  bool decrypts() const { return decrypts_; }
  bool verifies() const { return verify_; }

  std::span<const uint32_t> item_starts() const override { return item_starts_; }
  Status filter(size_t chunk, std::span<std::byte> bytes) override;

 private:
  explicit TensorizerReads(const format::ModelIndex& index) : index_(index) {}
  Status read_records(std::span<const io::ByteSource* const> files);
  Status resolve_keys(const TensorChecks& checks);
  Status check_dataless();
  Status build_plan(const ArenaLayout& layout, uint64_t chunk_size, uint64_t memory_limit);
  Status decrypt(size_t tensor, uint64_t at, std::span<std::byte> data) const;

  const format::ModelIndex& index_;  // outlives this
  bool verify_ = false;
  bool decrypts_ = false;
  std::vector<format::TensorizerRecord> records_;                   // per tensor of index_
  std::vector<std::unique_ptr<format::TensorizerKey>> keys_;        // the distinct keys
  std::vector<const format::TensorizerKey*> key_of_;                // per tensor (encrypted ones)
  std::vector<std::optional<format::TensorizerChecksums>> checks_;  // per tensor, while its item runs
  ReadPlan plan_;
  uint64_t chunk_size_ = 0;
  std::vector<uint32_t> piece_tensor_;                              // per plan_.pieces entry
  std::vector<uint32_t> item_starts_;
};

}  // namespace tensorinit::stage
