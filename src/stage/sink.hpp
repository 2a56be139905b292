// Where staged bytes go. The pipeline's readers call a sink concurrently, each for its own chunk.
#pragma once

#include <cstddef>
#include <span>

#include "stage/layout.hpp"
#include "util/error.hpp"

namespace tensorinit::stage {

class Sink {
 public:
  virtual ~Sink() = default;

  // Host memory that the arena byte `dest_offset` lives at, so a buffered read can land in place
  // (one copy, done by the kernel); nullptr when the destination is not host-addressable.
  // Thread-safe.
  virtual std::byte* place(uint64_t dest_offset) = 0;

  // Takes one chunk: `bytes` holds file bytes [chunk.offset, chunk.offset + chunk.len).
  // The buffer is reused as soon as this returns. Thread-safe for distinct chunks.
  virtual Status consume(const Chunk& chunk, std::span<const Piece> pieces, const std::byte* bytes) = 0;
};

// Copies pieces into a host arena.
class HostSink final : public Sink {
 public:
  explicit HostSink(std::byte* arena) : arena_(arena) {}
  std::byte* place(uint64_t dest_offset) override { return arena_ + dest_offset; }
  Status consume(const Chunk& chunk, std::span<const Piece> pieces, const std::byte* bytes) override;

 private:
  std::byte* arena_;
};

// Reading is the whole point: the pages are now in the page cache for the server to read.
class PageCacheSink final : public Sink {
 public:
  std::byte* place(uint64_t) override { return nullptr; }
  Status consume(const Chunk&, std::span<const Piece>, const std::byte*) override { return {}; }
};

}  // namespace tensorinit::stage
