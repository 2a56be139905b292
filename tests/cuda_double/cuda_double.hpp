// A strict test double of the CUDA runtime: defines every call in src/stage/cuda_runtime.hpp with
// host memory standing in for device memory, one worker thread per stream (copies really run
// later, after an optional delay) and events that complete when their stream reaches them.
//
// It fails loudly on what a real GPU punishes silently or later:
//  - cudaMemcpyAsync from memory not allocated by cudaHostAlloc (a pageable copy);
//  - a pinned buffer written while a copy from it is in flight (the source range is checksummed at
//    enqueue and again when the copy executes);
//  - reading device memory (cudaMemcpy to host) or exporting it (cudaIpcGetMemHandle) while copies
//    into it are still in flight (cudaMemcpy then waits for them, as the real one would, so the
//    bytes it returns are settled);
//  - any use of a freed pointer, stream or event; freeing memory a queued copy still uses;
//  - device memory from cudaMalloc reads as 0xA5 bytes until written (the real one holds whatever
//    the device held before, never a promise of zeros);
//  - (stricter than UVA needs) a pinned buffer without cudaHostAllocPortable feeding another device.
// Each violation is printed ("cuda double: VIOLATION: ...") and then aborts the process, or, when
// configured to record (unit tests), is kept for the test to assert on. Freed memory is remapped
// PROT_NONE so a stray CPU access also crashes instead of reading recycled bytes.
//
// Environment (read at first use): TENSORINIT_CUDA_DOUBLE_DEVICES (a count, default 2, or
// "nodriver": every call returns cudaErrorInsufficientDriver), TENSORINIT_CUDA_DOUBLE_DELAY_US
// (delay before each copy runs, default 50), TENSORINIT_CUDA_DOUBLE_ON_VIOLATION (abort|record,
// default abort), TENSORINIT_CUDA_DOUBLE_DUMP (a directory: cudaFree writes each device
// allocation's bytes there as cuda<device>.arena, so scripts can check what a process staged).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tensorinit::cuda_double {

struct Config {
  int devices = 2;             // < 0: no driver
  unsigned copy_delay_us = 50;
  bool abort_on_violation = true;
  // Queued work runs only while some caller is blocked waiting on the runtime (a synchronize, a
  // blocking cudaMemcpy, a free of memory in use): a misuse between enqueue and wait then always
  // overlaps its copy, however the threads are scheduled. For tests of the double itself; code
  // that polls cudaEventQuery without ever waiting would spin forever.
  bool hold_until_waited = false;
};
void configure(const Config& config);  // call while no stream has queued work

struct Stats {
  uint64_t async_h2d_copies = 0;
  uint64_t sync_h2d_copies = 0;      // cudaMemcpy host->device: the sink must make none
  uint64_t streams_with_copies = 0;  // distinct streams that carried an async copy
  uint64_t event_waits = 0;          // cudaEventSynchronize + cudaEventQuery calls
  uint64_t pinned_allocs = 0;
  uint64_t device_allocs = 0;
  uint64_t live_pinned_bytes = 0;
  uint64_t live_device_bytes = 0;
};
Stats stats();

std::vector<std::string> violations();
void reset();  // clears violations and counters (not allocations)

}  // namespace tensorinit::cuda_double
