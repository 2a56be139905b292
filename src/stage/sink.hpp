// Where staged bytes go. The pipeline's readers call a sink concurrently, each for its own chunk.
#pragma once

#include <cstddef>
#include <mutex>
#include <span>
#include <string>

#include "stage/layout.hpp"
#include "util/error.hpp"

namespace tensorinit::stage {

// Staging memory a sink provides when the readers must read into it (pinned memory for DMA).
// Thread-safe.
class StagingBuffers {
 public:
  virtual ~StagingBuffers() = default;
  virtual size_t buffer_size() const = 0;        // each buffer; 4096-aligned
  virtual Result<std::byte*> acquire() = 0;      // blocks until a buffer may be overwritten
  virtual void release(std::byte* buffer) = 0;   // after consume (or a failed read): back to the ring
};

class Sink {
 public:
  virtual ~Sink() = default;

  // The buffers readers must read into, or nullptr: each reader then owns one buffer of its own.
  virtual StagingBuffers* staging() { return nullptr; }

  // Takes one chunk: `bytes` holds file bytes [chunk.offset, chunk.offset + chunk.len).
  // Without staging(), the buffer is reused as soon as this returns; with it, the buffer goes back
  // through release() and the sink decides when it may be overwritten. `serialised`: the writes take
  // turns with other readers' (ReadSetting::serialised; only HostSink has such turns, others ignore
  // it). Thread-safe for distinct chunks.
  virtual Status consume(const Chunk& chunk, std::span<const Piece> pieces, const std::byte* bytes,
                         bool serialised) = 0;

  // Whether consume_from can copy from `fd` itself, kernel to kernel (the read controller's splice
  // mode). Thread-safe.
  virtual bool takes_descriptor(int /*fd*/) const { return false; }
  // Takes one chunk straight from the file behind `fd` (named `name` in errors): file bytes
  // [chunk.offset, + chunk.len) as they are now. Only where takes_descriptor(fd). A file shorter
  // than the chunk is Code::bad_data. Thread-safe for distinct chunks.
  virtual Status consume_from(const Chunk& chunk, std::span<const Piece> pieces, int fd, const std::string& name,
                              bool serialised);
  // Takes one chunk from `mapped`: file bytes [chunk.offset, + chunk.len) of the file named `name`
  // as a shared read-only mapping, which only system calls may read (a page past a truncated end
  // faults: a system call returns EFAULT, a read in user space would be killed by SIGBUS); a fault
  // is Code::bad_data. Only where takes_descriptor(). Thread-safe for distinct chunks.
  virtual Status consume_mapped(const Chunk& chunk, std::span<const Piece> pieces, const std::byte* mapped,
                                const std::string& name, bool serialised);
};

// Writes pieces into a host arena through its file descriptor. Measured here (1 GiB, /dev/shm):
// memcpy into the shared mapping 0.39-0.57 GB/s with one minor fault per 4 KiB page (each page
// allocated and zeroed, then overwritten); pwrite 0.89-1.09 GB/s with almost no faults, since
// tmpfs skips zeroing pages that are written whole. From a descriptor it splices through a pipe
// per thread: the page cache's pages go into the pipe by reference and are copied once, into
// tmpfs, where pread + pwrite copies twice (copy_file_range refuses across filesystems: EXDEV).
// Writes into the arena go one at a time: tmpfs holds the file's inode lock for each write anyway,
// and readers waiting on it in the kernel spin on the other core (rwsem optimistic spinning), where
// on a user-space mutex they sleep. Measured here (CPU seconds for 2 GiB, 2 cores, load 18-20;
// tests/bench/arena_reads.c without and with ARENA_LOCK=1): page-cached pread + pwrite 4M x8
// 1.29-1.38 unserialised, 1.12-1.15 serialised; O_DIRECT + pwrite, cold, 1M x16 and 4M x8
// 1.17-1.37 against 1.18-1.25. The reads still overlap the writes. At a quiet moment the turns cost
// about 10% (docs/notes/copy21.md), so they are per write: a setting may drop them (`serialised`).
class HostSink final : public Sink {
 public:
  HostSink(int arena_fd, std::string arena_name) : fd_(arena_fd), name_(std::move(arena_name)) {}
  Status consume(const Chunk& chunk, std::span<const Piece> pieces, const std::byte* bytes, bool serialised) override;
  bool takes_descriptor(int fd) const override;
  Status consume_from(const Chunk& chunk, std::span<const Piece> pieces, int fd, const std::string& name,
                      bool serialised) override;
  Status consume_mapped(const Chunk& chunk, std::span<const Piece> pieces, const std::byte* mapped,
                        const std::string& name, bool serialised) override;

 private:
  // Writes the pieces, those under `copy_below` bytes copied into a gather buffer, the others
  // written from where they lie; `source` names the bytes in a fault's message.
  Status write_pieces(const Chunk& chunk, std::span<const Piece> pieces, const std::byte* bytes, uint64_t copy_below,
                      const std::string* source, bool serialised);
  // writes_ held, or nothing where the writes do not take turns.
  std::unique_lock<std::mutex> turn(bool serialised) {
    return serialised ? std::unique_lock(writes_) : std::unique_lock<std::mutex>();
  }

  int fd_;
  std::string name_;
  std::mutex writes_;  // one write into the arena at a time
};

// Takes chunks and keeps nothing: for reads whose point is a side effect (filling a cache).
class NullSink final : public Sink {
 public:
  Status consume(const Chunk&, std::span<const Piece>, const std::byte*, bool) override { return {}; }
};

}  // namespace tensorinit::stage
