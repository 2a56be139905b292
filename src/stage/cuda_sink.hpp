// The cuda sink: chunks arrive in pinned staging buffers (a ring allocated once with
// cudaHostAlloc) and go to every device arena with cudaMemcpyAsync on per-device streams. A
// buffer returns to the readers only after the event recorded behind its copies has completed,
// so no copy ever reads a buffer a reader is refilling. Never a pageable or synchronous copy.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "stage/cuda_device.hpp"
#include "stage/cuda_runtime.hpp"
#include "stage/pipeline.hpp"
#include "stage/sink.hpp"

namespace tensorinit::stage {

struct CudaSinkOptions {
  size_t buffer_bytes = staging_buffer_bytes(16u << 20);  // for the readers' largest chunk
  unsigned buffers = 4;                      // the ring; memory_limit / buffer_bytes at most
  unsigned streams_per_device = 2;
};

// How many ring buffers fit in `memory_limit`, for `readers` readers: enough that every reader
// can fill one while as many copies are in flight, at least 2.
unsigned choose_staging_buffers(uint64_t memory_limit, size_t buffer_bytes, unsigned readers);

// Thread-safe: readers call acquire/consume/release concurrently. `arenas` must outlive the sink.
class CudaSink final : public Sink, public StagingBuffers {
 public:
  static Result<std::unique_ptr<CudaSink>> create(std::span<CudaArena> arenas, const CudaSinkOptions& options);
  ~CudaSink() override;  // waits for queued copies, then frees streams, events and buffers

  Status consume(const Chunk& chunk, std::span<const Piece> pieces, const std::byte* bytes, bool serialised) override;
  StagingBuffers* staging() override { return this; }

  size_t buffer_size() const override { return options_.buffer_bytes; }
  Result<std::byte*> acquire() override;
  void release(std::byte* buffer) override;

  // Waits until every queued copy has completed; the arenas are whole when this succeeds.
  Status finish();

 private:
  struct Slot {
    std::byte* data = nullptr;
    std::vector<cudart::Event> events;  // one per device, recorded after the slot's copies
    bool in_flight = false;             // events recorded and not yet waited for
  };
  CudaSink(std::span<CudaArena> arenas, const CudaSinkOptions& options) : arenas_(arenas), options_(options) {}
  Status allocate();
  Slot* slot_of(const std::byte* bytes);  // nullptr: not a staging buffer (never thrown: readers' threads)
  Status wait_slot(Slot& slot);

  std::span<CudaArena> arenas_;
  CudaSinkOptions options_;
  std::vector<Slot> slots_;                          // fixed after create()
  std::vector<std::vector<cudart::Stream>> streams_;  // [arena][k]
  std::atomic<unsigned> next_stream_{0};
  std::mutex mutex_;
  std::condition_variable freed_;
  std::vector<size_t> free_;  // slot indices readers may take
};

}  // namespace tensorinit::stage
