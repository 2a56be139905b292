// The decoded bytes of a packed file (packed_table.hpp) over any ByteSource holding it: a local
// file, a remote object. read_at reads the compressed frames covering the range with one inner
// read, decodes them on the calling thread (so the pipeline's readers decode in parallel),
// checks each frame's checksum, undoes byte planes, and copies the wanted part; whole frames
// decode straight into the caller's buffer.
#pragma once

#include <atomic>
#include <memory>

#include "format/packed_table.hpp"
#include "io/byte_source.hpp"

namespace tensorinit::format {

class PackedSource final : public io::ByteSource {
 public:
  // Reads and validates the seek table. `inner` must outlive the source (or is owned by it).
  // Errors: Code::bad_data (not a packed file, malformed table), or the inner read's.
  static Result<std::unique_ptr<PackedSource>> open(const io::ByteSource& inner);
  static Result<std::unique_ptr<PackedSource>> open(std::unique_ptr<io::ByteSource> inner);

  uint64_t size() const override { return table_.decoded_size; }
  const std::string& name() const override { return inner_->name(); }

  // Thread-safe. A frame that does not decode to what the seek table says, or fails its checksum,
  // is Code::bad_data naming the file and the frame.
  Status read_at(uint64_t offset, std::span<std::byte> out) const override;

  const SeekTable& table() const { return table_; }
  const io::ByteSource& inner() const { return *inner_; }

  // What reads so far cost: compressed bytes read from the inner source, bytes decoded (whole
  // frames; more than was asked for when reads cut frames). Thread-safe.
  uint64_t compressed_bytes_read() const { return compressed_read_.load(std::memory_order_relaxed); }
  uint64_t decoded_bytes() const { return decoded_.load(std::memory_order_relaxed); }

 private:
  PackedSource(const io::ByteSource& inner, SeekTable table);
  Status read_frames(size_t first, size_t last, std::span<const std::byte>& stored) const;
  Status decode_frame(size_t index, std::span<const std::byte> stored, std::span<std::byte> out) const;
  Status copy_from_frame(size_t index, std::span<const std::byte> stored, uint64_t within,
                         std::span<std::byte> out) const;

  std::unique_ptr<io::ByteSource> owned_;
  const io::ByteSource* inner_;
  SeekTable table_;
  uint64_t id_;  // tells this source's frames apart in the per-thread decode cache
  mutable std::atomic<uint64_t> compressed_read_{0};
  mutable std::atomic<uint64_t> decoded_{0};
};

// Frees the calling thread's decoder and buffers (they live as long as the thread otherwise):
// for long-lived threads, such as the one that indexed a packed file and then supervises.
void release_packed_decode_state();

}  // namespace tensorinit::format
