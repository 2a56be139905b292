#include "stage/cuda_sink.hpp"

#include <algorithm>
#include <fmt/format.h>

namespace tensorinit::stage {
namespace {

Status check(int error, std::string_view call) {
  if (error == cudart::kSuccess) return {};
  return fail(Code::io, cuda_message(call, error));
}

}  // namespace

unsigned choose_staging_buffers(uint64_t memory_limit, size_t buffer_bytes, unsigned readers) {
  const uint64_t affordable = memory_limit / std::max<size_t>(buffer_bytes, 1);
  return static_cast<unsigned>(std::max<uint64_t>(2, std::min<uint64_t>(affordable, 2ull * std::max(readers, 1u))));
}

Result<std::unique_ptr<CudaSink>> CudaSink::create(std::span<CudaArena> arenas, const CudaSinkOptions& options) {
  std::unique_ptr<CudaSink> sink(new CudaSink(arenas, options));
  if (auto ok = sink->allocate(); !ok) return std::unexpected(ok.error());
  return sink;
}

Status CudaSink::allocate() {
  for (const CudaArena& arena : arenas_) {
    if (auto ok = check(cudart::cudaSetDevice(arena.device()), "cudaSetDevice"); !ok) return ok;
    auto& streams = streams_.emplace_back();
    for (unsigned k = 0; k < std::max(1u, options_.streams_per_device); ++k) {
      cudart::Stream s = nullptr;
      if (auto ok = check(cudart::cudaStreamCreateWithFlags(&s, cudart::kStreamNonBlocking), "cudaStreamCreateWithFlags"); !ok)
        return ok;
      streams.push_back(s);
    }
  }
  // Portable: the buffers feed every device's copies, not only the current one's.
  const unsigned flags = arenas_.size() > 1 ? cudart::kHostAllocPortable : cudart::kHostAllocDefault;
  for (unsigned i = 0; i < options_.buffers; ++i) {
    Slot& slot = slots_.emplace_back();
    void* p = nullptr;
    if (const int e = cudart::cudaHostAlloc(&p, options_.buffer_bytes, flags); e != cudart::kSuccess)
      return fail(Code::unavailable, cuda_message(fmt::format("cudaHostAlloc({} staging bytes)", options_.buffer_bytes), e));
    slot.data = static_cast<std::byte*>(p);
    for (const CudaArena& arena : arenas_) {
      cudart::cudaSetDevice(arena.device());
      cudart::Event event = nullptr;
      if (auto ok = check(cudart::cudaEventCreateWithFlags(&event, cudart::kEventDisableTiming), "cudaEventCreateWithFlags"); !ok)
        return ok;
      slot.events.push_back(event);
    }
    free_.push_back(i);
  }
  return {};
}

CudaSink::~CudaSink() {
  for (auto& streams : streams_)
    for (cudart::Stream s : streams) cudart::cudaStreamSynchronize(s);
  for (auto& streams : streams_)
    for (cudart::Stream s : streams) cudart::cudaStreamDestroy(s);
  for (Slot& slot : slots_) {
    for (cudart::Event e : slot.events) cudart::cudaEventDestroy(e);
    if (slot.data) cudart::cudaFreeHost(slot.data);
  }
}

CudaSink::Slot* CudaSink::slot_of(const std::byte* bytes) {
  for (Slot& slot : slots_)
    if (bytes >= slot.data && bytes < slot.data + options_.buffer_bytes) return &slot;
  return nullptr;
}

Status CudaSink::wait_slot(Slot& slot) {
  if (!slot.in_flight) return {};
  for (cudart::Event e : slot.events)
    if (auto ok = check(cudart::cudaEventSynchronize(e), "cudaEventSynchronize (a staging copy)"); !ok) return ok;
  slot.in_flight = false;
  return {};
}

Result<std::byte*> CudaSink::acquire() {
  size_t i;
  {
    std::unique_lock lock(mutex_);
    freed_.wait(lock, [&] { return !free_.empty(); });
    i = free_.back();
    free_.pop_back();
  }
  // Only this reader holds slot i now: waiting on its events outside the lock blocks no one else.
  if (auto ok = wait_slot(slots_[i]); !ok) {
    release(slots_[i].data);
    return std::unexpected(ok.error());
  }
  return slots_[i].data;
}

void CudaSink::release(std::byte* buffer) {
  const Slot* slot = slot_of(buffer);
  if (!slot) return;  // not one of ours: nothing to give back
  const size_t i = static_cast<size_t>(slot - slots_.data());
  {
    std::lock_guard lock(mutex_);
    free_.push_back(i);
  }
  freed_.notify_one();
}

Status CudaSink::consume(const Chunk& chunk, std::span<const Piece> pieces, const std::byte* bytes, bool) {
  Slot* found = slot_of(bytes);
  if (!found) return fail(Code::internal, "cuda sink: chunk bytes are not in a staging buffer");
  Slot& slot = *found;
  const unsigned k = next_stream_.fetch_add(1, std::memory_order_relaxed);
  for (size_t a = 0; a < arenas_.size(); ++a) {
    const CudaArena& arena = arenas_[a];
    cudart::Stream stream = streams_[a][k % streams_[a].size()];
    if (auto ok = check(cudart::cudaSetDevice(arena.device()), "cudaSetDevice"); !ok) return ok;
    for (const Piece& p : pieces) {
      const int e = cudart::cudaMemcpyAsync(arena.data() + p.dest_offset, bytes + (p.file_offset - chunk.offset), p.len,
                                            cudart::kHostToDevice, stream);
      if (e != cudart::kSuccess)
        return fail(Code::io, cuda_message(fmt::format("cudaMemcpyAsync ({} bytes to cuda:{})", p.len, arena.device()), e));
    }
    // The slot is owned by this reader until release(): in_flight needs no lock.
    slot.in_flight = true;
    if (auto ok = check(cudart::cudaEventRecord(slot.events[a], stream), "cudaEventRecord"); !ok) return ok;
  }
  return {};
}

Status CudaSink::finish() {
  for (size_t a = 0; a < streams_.size(); ++a)
    for (cudart::Stream s : streams_[a])
      if (auto ok = check(cudart::cudaStreamSynchronize(s), fmt::format("cudaStreamSynchronize (cuda:{})", arenas_[a].device()));
          !ok)
        return ok;
  return {};
}

}  // namespace tensorinit::stage
