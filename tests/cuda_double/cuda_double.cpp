// The strict CUDA runtime double (see cuda_double.hpp). One global state under one mutex; each
// stream owns a worker thread that runs its queue in order.
// Over 500 lines for a reason: all 19 calls share that one state and its invariants (pending
// copies per allocation, generations per event), so splitting them would only spread one lock.
#include "cuda_double.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fmt/format.h>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "stage/cuda_runtime.hpp"

namespace tensorinit::cudart {

struct StreamImpl {
  int device = 0;
  bool destroyed = false;
  std::deque<std::function<void()>> queue;  // guarded by the global mutex
  bool busy = false;                        // the worker is running an op
  bool quit = false;
  std::condition_variable wake;             // work queued, or quit
  std::condition_variable idle;             // queue drained
  std::thread worker;
};

struct EventImpl {
  bool destroyed = false;
  uint64_t recorded = 0;   // generations: recorded by cudaEventRecord,
  uint64_t completed = 0;  // completed when the stream reached the record
  std::condition_variable done;
};

}  // namespace tensorinit::cudart

namespace tensorinit::cuda_double {
namespace {

using namespace tensorinit::cudart;

struct Allocation {
  std::byte* base = nullptr;
  size_t size = 0;
  size_t mapped = 0;
  bool pinned = false;
  int device = -1;       // device memory: its device; pinned: the device current at allocation
  bool portable = false;  // pinned with cudaHostAllocPortable
  uint64_t id = 0;
  bool freed = false;
  int pending_writes = 0;  // queued copies into it
  int pending_reads = 0;   // queued copies from it
};

struct State {
  std::mutex mutex;
  std::condition_variable changed;  // a queued copy finished (pending counts moved)
  bool configured = false;
  Config config;
  std::string dump_dir;
  std::map<uintptr_t, Allocation> allocations;  // by base; freed ones stay (their range is PROT_NONE)
  std::vector<std::string> violations;
  Stats stats;
  std::set<StreamImpl*> copy_streams;
  // Every stream and event ever created, destroyed ones too: a destroyed handle must stay
  // recognisable, and holding them here keeps them reachable (not leaks) for LeakSanitizer.
  std::vector<StreamImpl*> every_stream;
  std::vector<EventImpl*> every_event;
  uint64_t next_id = 1;
  int waiters = 0;  // callers blocked on the runtime (Config::hold_until_waited lets work run then)
};

State& state() {
  static State* s = new State;  // never destroyed: workers may outlive static destruction
  return *s;
}

// Caller holds the mutex. While it lives, a caller is blocked on the runtime: held work may run.
class Waiting {
 public:
  explicit Waiting(State& s) : s_(s) {
    if (++s_.waiters == 1)
      for (StreamImpl* stream : s_.every_stream) stream->wake.notify_all();
  }
  ~Waiting() { --s_.waiters; }
  Waiting(const Waiting&) = delete;
  Waiting& operator=(const Waiting&) = delete;

 private:
  State& s_;
};

thread_local int current_device = 0;

// Caller holds the mutex.
void configure_from_env(State& s) {
  if (s.configured) return;
  s.configured = true;
  if (const char* d = std::getenv("TENSORINIT_CUDA_DOUBLE_DEVICES"))
    s.config.devices = std::strcmp(d, "nodriver") == 0 ? -1 : std::atoi(d);
  if (const char* d = std::getenv("TENSORINIT_CUDA_DOUBLE_DELAY_US")) s.config.copy_delay_us = std::atoi(d);
  if (const char* v = std::getenv("TENSORINIT_CUDA_DOUBLE_ON_VIOLATION"))
    s.config.abort_on_violation = std::strcmp(v, "record") != 0;
  if (const char* d = std::getenv("TENSORINIT_CUDA_DOUBLE_DUMP")) s.dump_dir = d;
}

// Caller holds the mutex.
void violation(State& s, std::string what) {
  std::fprintf(stderr, "cuda double: VIOLATION: %s\n", what.c_str());
  if (s.config.abort_on_violation) std::abort();
  s.violations.push_back(std::move(what));
}

// The allocation holding [p, p + n), freed or not; nullptr when none does.
Allocation* find(State& s, const void* p, size_t n) {
  const auto at = reinterpret_cast<uintptr_t>(p);
  auto it = s.allocations.upper_bound(at);
  if (it == s.allocations.begin()) return nullptr;
  --it;
  Allocation& a = it->second;
  const auto base = reinterpret_cast<uintptr_t>(a.base);
  if (at < base || at + n > base + std::max<size_t>(a.size, 1)) return nullptr;
  return &a;
}

uint64_t checksum(const void* p, size_t n) {  // FNV-1a over 8-byte words, then the tail
  uint64_t h = 1469598103934665603ull;
  const auto* b = static_cast<const unsigned char*>(p);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, b + i, 8);
    h = (h ^ w) * 1099511628211ull;
  }
  for (; i < n; ++i) h = (h ^ b[i]) * 1099511628211ull;
  return h;
}

bool no_driver(State& s) { return s.config.devices < 0; }

Error allocate(void** ptr, size_t size, bool pinned, unsigned flags = 0) {
  State& s = state();
  std::lock_guard lock(s.mutex);
  configure_from_env(s);
  if (no_driver(s)) return kErrorInsufficientDriver;
  if (!ptr) return kErrorInvalidValue;
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  const size_t mapped = (std::max<size_t>(size, 1) + page - 1) / page * page;
  void* p = ::mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return kErrorMemoryAllocation;
  // cudaMalloc does not clear memory (it holds what the last user left): never zeros here either.
  if (!pinned) std::memset(p, 0xA5, size);
  s.allocations[reinterpret_cast<uintptr_t>(p)] = Allocation{
      .base = static_cast<std::byte*>(p), .size = size, .mapped = mapped, .pinned = pinned,
      .device = current_device, .portable = (flags & kHostAllocPortable) != 0, .id = s.next_id++};
  if (pinned) ++s.stats.pinned_allocs, s.stats.live_pinned_bytes += size;
  else ++s.stats.device_allocs, s.stats.live_device_bytes += size;
  *ptr = p;
  return kSuccess;
}

void dump(const State& s, const Allocation& a) {
  if (s.dump_dir.empty() || a.pinned) return;
  const std::string path = fmt::format("{}/cuda{}.arena", s.dump_dir, a.device);
  if (FILE* f = std::fopen(path.c_str(), "wb")) {
    std::fwrite(a.base, 1, a.size, f);
    std::fclose(f);
  }
}

Error release(void* ptr, bool pinned) {
  State& s = state();
  std::unique_lock lock(s.mutex);
  configure_from_env(s);
  if (no_driver(s)) return kErrorInsufficientDriver;
  if (!ptr) return kSuccess;  // cudaFree(nullptr): a no-op that creates the context
  auto it = s.allocations.find(reinterpret_cast<uintptr_t>(ptr));
  const char* fn = pinned ? "cudaFreeHost" : "cudaFree";
  if (it == s.allocations.end() || it->second.pinned != pinned) {
    violation(s, fmt::format("{}({}): not a pointer from {}", fn, ptr, pinned ? "cudaHostAlloc" : "cudaMalloc"));
    return kErrorInvalidValue;
  }
  Allocation& a = it->second;
  if (a.freed) {
    violation(s, fmt::format("{}({}): freed twice", fn, ptr));
    return kErrorInvalidValue;
  }
  if (a.pending_reads || a.pending_writes) {
    violation(s, fmt::format("{}({}): {} queued copies still use this memory", fn, ptr, a.pending_reads + a.pending_writes));
    Waiting waiting(s);
    s.changed.wait(lock, [&] { return a.pending_reads == 0 && a.pending_writes == 0; });  // keep the process alive
  }
  dump(s, a);
  a.freed = true;
  (pinned ? s.stats.live_pinned_bytes : s.stats.live_device_bytes) -= a.size;
  ::mmap(a.base, a.mapped, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);  // keep the range reserved
  return kSuccess;
}

void run_worker(StreamImpl* stream) {
  State& s = state();
  std::unique_lock lock(s.mutex);
  for (;;) {
    stream->wake.wait(lock, [&] {
      return stream->quit || (!stream->queue.empty() && (!s.config.hold_until_waited || s.waiters > 0));
    });
    if (stream->queue.empty()) return;
    auto op = std::move(stream->queue.front());
    stream->queue.pop_front();
    stream->busy = true;
    const unsigned delay = s.config.copy_delay_us;
    lock.unlock();
    if (delay) std::this_thread::sleep_for(std::chrono::microseconds(delay));
    op();
    lock.lock();
    stream->busy = false;
    if (stream->queue.empty()) stream->idle.notify_all();
  }
}

void drain(std::unique_lock<std::mutex>& lock, StreamImpl* stream) {
  Waiting waiting(state());
  stream->idle.wait(lock, [&] { return stream->queue.empty() && !stream->busy; });
}

bool live_stream(State& s, Stream stream, const char* fn) {
  if (!stream) {
    violation(s, fmt::format("{}: the legacy default stream (tensorinit uses its own non-blocking streams)", fn));
    return false;
  }
  if (stream->destroyed) {
    violation(s, fmt::format("{}: stream {} used after cudaStreamDestroy", fn, static_cast<void*>(stream)));
    return false;
  }
  return true;
}

bool live_event(State& s, Event event, const char* fn) {
  if (!event) return violation(s, fmt::format("{}: null event", fn)), false;
  if (event->destroyed) {
    violation(s, fmt::format("{}: event {} used after cudaEventDestroy", fn, static_cast<void*>(event)));
    return false;
  }
  return true;
}

}  // namespace

void configure(const Config& config) {
  State& s = state();
  std::lock_guard lock(s.mutex);
  configure_from_env(s);
  s.config = config;
}

Stats stats() {
  State& s = state();
  std::lock_guard lock(s.mutex);
  Stats out = s.stats;
  out.streams_with_copies = s.copy_streams.size();
  return out;
}

std::vector<std::string> violations() {
  State& s = state();
  std::lock_guard lock(s.mutex);
  return s.violations;
}

void reset() {
  State& s = state();
  std::lock_guard lock(s.mutex);
  s.violations.clear();
  const Stats live = s.stats;
  s.stats = Stats{.live_pinned_bytes = live.live_pinned_bytes, .live_device_bytes = live.live_device_bytes};
  s.copy_streams.clear();
}

}  // namespace tensorinit::cuda_double

namespace tensorinit::cudart {

using cuda_double::state;
using cuda_double::violation;

extern "C" {

Error cudaGetDeviceCount(int* count) {
  auto& s = state();
  std::lock_guard lock(s.mutex);
  cuda_double::configure_from_env(s);
  *count = std::max(0, s.config.devices);
  if (s.config.devices < 0) return kErrorInsufficientDriver;
  return s.config.devices == 0 ? kErrorNoDevice : kSuccess;
}

Error cudaSetDevice(int device) {
  auto& s = state();
  std::lock_guard lock(s.mutex);
  cuda_double::configure_from_env(s);
  if (s.config.devices < 0) return kErrorInsufficientDriver;
  if (device < 0 || device >= s.config.devices) return kErrorInvalidValue;
  cuda_double::current_device = device;
  return kSuccess;
}

Error cudaGetDeviceProperties(void* prop, int device) {
  auto& s = state();
  std::lock_guard lock(s.mutex);
  cuda_double::configure_from_env(s);
  if (s.config.devices < 0) return kErrorInsufficientDriver;
  if (!prop || device < 0 || device >= s.config.devices) return kErrorInvalidValue;
  auto* p = static_cast<unsigned char*>(prop);
  std::memset(p, 0, 1024);  // a real cudaDeviceProp is about 1 KiB; callers must not read past it
  std::snprintf(reinterpret_cast<char*>(p), 256, "tensorinit CUDA test double %d", device);
  const unsigned char uuid[kUuidBytes] = {'t', 'i', 'd', 'b', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                          static_cast<unsigned char>(device)};
  std::memcpy(p + kDevicePropUuidOffset, uuid, kUuidBytes);
  return kSuccess;
}

const char* cudaGetErrorString(Error error) {
  switch (error) {
    case kSuccess: return "no error";
    case kErrorInvalidValue: return "invalid argument";
    case kErrorMemoryAllocation: return "out of memory";
    case kErrorInsufficientDriver: return "CUDA driver version is insufficient for CUDA runtime version";
    case kErrorNoDevice: return "no CUDA-capable device is detected";
    case kErrorNotReady: return "device not ready";
    default: return "unknown error";
  }
}

Error cudaMalloc(void** ptr, size_t size) { return cuda_double::allocate(ptr, size, false); }
Error cudaHostAlloc(void** ptr, size_t size, unsigned int flags) { return cuda_double::allocate(ptr, size, true, flags); }
Error cudaFree(void* ptr) { return cuda_double::release(ptr, false); }
Error cudaFreeHost(void* ptr) { return cuda_double::release(ptr, true); }

Error cudaStreamCreateWithFlags(Stream* stream, unsigned int) {
  auto& s = state();
  std::lock_guard lock(s.mutex);
  cuda_double::configure_from_env(s);
  if (s.config.devices < 0) return kErrorInsufficientDriver;
  auto* st = s.every_stream.emplace_back(new StreamImpl);  // never deleted (see State)
  st->device = cuda_double::current_device;
  st->worker = std::thread(cuda_double::run_worker, st);
  *stream = st;
  return kSuccess;
}

Error cudaStreamDestroy(Stream stream) {
  auto& s = state();
  std::unique_lock lock(s.mutex);
  if (!cuda_double::live_stream(s, stream, "cudaStreamDestroy")) return kErrorInvalidValue;
  stream->destroyed = true;  // like CUDA: queued work still completes
  cuda_double::drain(lock, stream);
  stream->quit = true;
  stream->wake.notify_all();
  lock.unlock();
  stream->worker.join();
  return kSuccess;
}

Error cudaStreamSynchronize(Stream stream) {
  auto& s = state();
  std::unique_lock lock(s.mutex);
  if (!cuda_double::live_stream(s, stream, "cudaStreamSynchronize")) return kErrorInvalidValue;
  cuda_double::drain(lock, stream);
  return kSuccess;
}

Error cudaEventCreateWithFlags(Event* event, unsigned int) {
  auto& s = state();
  std::lock_guard lock(s.mutex);
  cuda_double::configure_from_env(s);
  if (s.config.devices < 0) return kErrorInsufficientDriver;
  *event = s.every_event.emplace_back(new EventImpl);  // never deleted, like streams
  return kSuccess;
}

Error cudaEventDestroy(Event event) {
  auto& s = state();
  std::lock_guard lock(s.mutex);
  if (!cuda_double::live_event(s, event, "cudaEventDestroy")) return kErrorInvalidValue;
  event->destroyed = true;
  return kSuccess;
}

Error cudaEventRecord(Event event, Stream stream) {
  auto& s = state();
  std::lock_guard lock(s.mutex);
  if (!cuda_double::live_event(s, event, "cudaEventRecord") || !cuda_double::live_stream(s, stream, "cudaEventRecord"))
    return kErrorInvalidValue;
  const uint64_t generation = ++event->recorded;
  stream->queue.push_back([event, generation] {
    auto& st = state();
    std::lock_guard l(st.mutex);
    event->completed = std::max(event->completed, generation);
    event->done.notify_all();
  });
  stream->wake.notify_one();
  return kSuccess;
}

Error cudaEventQuery(Event event) {
  auto& s = state();
  std::lock_guard lock(s.mutex);
  if (!cuda_double::live_event(s, event, "cudaEventQuery")) return kErrorInvalidValue;
  ++s.stats.event_waits;
  return event->completed >= event->recorded ? kSuccess : kErrorNotReady;
}

Error cudaEventSynchronize(Event event) {
  auto& s = state();
  std::unique_lock lock(s.mutex);
  if (!cuda_double::live_event(s, event, "cudaEventSynchronize")) return kErrorInvalidValue;
  ++s.stats.event_waits;
  const uint64_t target = event->recorded;
  cuda_double::Waiting waiting(s);
  event->done.wait(lock, [&] { return event->completed >= target; });
  return kSuccess;
}

Error cudaMemcpyAsync(void* dst, const void* src, size_t count, MemcpyKind kind, Stream stream) {
  auto& s = state();
  std::lock_guard lock(s.mutex);
  if (!cuda_double::live_stream(s, stream, "cudaMemcpyAsync")) return kErrorInvalidValue;
  if (kind != kHostToDevice) {
    violation(s, fmt::format("cudaMemcpyAsync: kind {} (tensorinit only copies host to device)", kind));
    return kErrorInvalidValue;
  }
  cuda_double::Allocation* from = cuda_double::find(s, src, count);
  if (!from || !from->pinned) {
    violation(s, fmt::format("cudaMemcpyAsync: source {} (+{} bytes) is not memory from cudaHostAlloc: a pageable copy",
                             src, count));
    return kErrorInvalidValue;
  }
  cuda_double::Allocation* to = cuda_double::find(s, dst, count);
  if (!to || to->pinned) {
    violation(s, fmt::format("cudaMemcpyAsync: destination {} (+{} bytes) is not device memory from cudaMalloc", dst, count));
    return kErrorInvalidValue;
  }
  if (from->freed || to->freed) {
    violation(s, fmt::format("cudaMemcpyAsync: {} used after it was freed", from->freed ? "source" : "destination"));
    return kErrorInvalidValue;
  }
  if (!from->portable && from->device != stream->device)
    violation(s, fmt::format("cudaMemcpyAsync: pinned buffer allocated while device {} was current, without "
                             "cudaHostAllocPortable, feeds a copy to device {}", from->device, stream->device));
  if (to->device != stream->device)
    violation(s, fmt::format("cudaMemcpyAsync: stream of device {} copies into memory of device {}", stream->device, to->device));
  ++from->pending_reads;
  ++to->pending_writes;
  ++s.stats.async_h2d_copies;
  s.copy_streams.insert(stream);
  const uint64_t sum = cuda_double::checksum(src, count);
  const uintptr_t from_base = reinterpret_cast<uintptr_t>(from->base), to_base = reinterpret_cast<uintptr_t>(to->base);
  stream->queue.push_back([=] {
    auto& st = state();
    const bool intact = cuda_double::checksum(src, count) == sum;
    std::memcpy(dst, src, count);
    std::lock_guard l(st.mutex);
    if (!intact)
      violation(st, fmt::format("pinned staging buffer {} (+{} bytes) was written while its copy was in flight", src, count));
    --st.allocations[from_base].pending_reads;
    --st.allocations[to_base].pending_writes;
    st.changed.notify_all();
  });
  stream->wake.notify_one();
  return kSuccess;
}

Error cudaMemcpy(void* dst, const void* src, size_t count, MemcpyKind kind) {
  auto& s = state();
  std::unique_lock lock(s.mutex);
  cuda_double::configure_from_env(s);
  if (s.config.devices < 0) return kErrorInsufficientDriver;
  const void* device_side = kind == kDeviceToHost ? src : dst;
  cuda_double::Allocation* a = cuda_double::find(s, device_side, count);
  if (!a || a->pinned) {
    violation(s, fmt::format("cudaMemcpy: {} (+{} bytes) is not device memory", device_side, count));
    return kErrorInvalidValue;
  }
  if (a->freed) {
    violation(s, fmt::format("cudaMemcpy: device memory {} used after cudaFree", device_side));
    return kErrorInvalidValue;
  }
  if (kind == kDeviceToHost && a->pending_writes)
    violation(s, fmt::format("cudaMemcpy: device memory {} read while {} copies into it are in flight (no event waited on)",
                             src, a->pending_writes));
  // Like the real (synchronous) cudaMemcpy, and so that a test that misuses the double on purpose
  // (violations recorded) reads settled bytes instead of racing the stream workers: the queued
  // copies into this allocation finish first. The lock stays released while they run.
  const uintptr_t base = reinterpret_cast<uintptr_t>(a->base);
  if (a->pending_writes) {
    cuda_double::Waiting waiting(s);
    s.changed.wait(lock, [&] { return s.allocations[base].pending_writes == 0; });
  }
  if (kind == kHostToDevice) ++s.stats.sync_h2d_copies;
  std::memcpy(dst, src, count);
  return kSuccess;
}

Error cudaIpcGetMemHandle(IpcMemHandle* handle, void* device_ptr) {
  auto& s = state();
  std::lock_guard lock(s.mutex);
  cuda_double::configure_from_env(s);
  if (s.config.devices < 0) return kErrorInsufficientDriver;
  auto it = s.allocations.find(reinterpret_cast<uintptr_t>(device_ptr));
  if (it == s.allocations.end() || it->second.pinned) {
    violation(s, fmt::format("cudaIpcGetMemHandle: {} is not the start of a cudaMalloc allocation", device_ptr));
    return kErrorInvalidValue;
  }
  const cuda_double::Allocation& a = it->second;
  if (a.freed) {
    violation(s, fmt::format("cudaIpcGetMemHandle: {} used after cudaFree", device_ptr));
    return kErrorInvalidValue;
  }
  if (a.pending_writes)
    violation(s, fmt::format("cudaIpcGetMemHandle: arena {} exported while {} copies into it are in flight", device_ptr,
                             a.pending_writes));
  std::memset(handle, 0, sizeof *handle);
  std::memcpy(handle->reserved, "TIDOUBLE", 8);
  const uint64_t pid = static_cast<uint64_t>(::getpid()), id = a.id, device = static_cast<uint64_t>(a.device);
  std::memcpy(handle->reserved + 8, &pid, 8);
  std::memcpy(handle->reserved + 16, &id, 8);
  std::memcpy(handle->reserved + 24, &device, 8);
  return kSuccess;
}

}  // extern "C"

}  // namespace tensorinit::cudart
