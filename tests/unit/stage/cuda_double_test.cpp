// The test double itself: each misuse a real GPU would punish is caught and named, and correct
// use raises nothing. These tests misuse the runtime on purpose, with the double recording.
#include <doctest/doctest.h>

#include <cstring>
#include <string>
#include <vector>

#include "cuda_double.hpp"
#include "stage/cuda_device.hpp"
#include "stage/cuda_runtime.hpp"

namespace tensorinit::stage {
namespace {

using namespace cudart;

// Record violations (instead of aborting), with copies held until a caller waits on the runtime:
// a misuse between enqueue and wait always overlaps its copy, however the threads are scheduled.
struct Recording {
  explicit Recording(int devices = 2, unsigned delay_us = 1000) {
    cuda_double::configure(
        {.devices = devices, .copy_delay_us = delay_us, .abort_on_violation = false, .hold_until_waited = true});
    cuda_double::reset();
  }
  ~Recording() {
    cuda_double::configure({});
    cuda_double::reset();
  }
  static bool caught(const std::string& what) {
    for (const auto& v : cuda_double::violations())
      if (v.find(what) != std::string::npos) return true;
    return false;
  }
};

struct Buffers {
  explicit Buffers(size_t n) : size(n) {
    REQUIRE(cudaSetDevice(0) == kSuccess);
    REQUIRE(cudaHostAlloc(&pinned, n, kHostAllocDefault) == kSuccess);
    REQUIRE(cudaMalloc(&device, n) == kSuccess);
    REQUIRE(cudaStreamCreateWithFlags(&stream, kStreamNonBlocking) == kSuccess);
    REQUIRE(cudaEventCreateWithFlags(&event, kEventDisableTiming) == kSuccess);
    std::memset(pinned, 0x5a, n);
  }
  ~Buffers() {
    cudaStreamSynchronize(stream);
    cudaEventDestroy(event);
    cudaStreamDestroy(stream);
    cudaFree(device);
    cudaFreeHost(pinned);
  }
  size_t size;
  void* pinned = nullptr;
  void* device = nullptr;
  Stream stream = nullptr;
  Event event = nullptr;
};

TEST_CASE("cuda double: a correct copy, waited on through its event, is byte-exact and raises nothing") {
  Recording recording;
  Buffers b(1 << 16);
  for (size_t i = 0; i < b.size; ++i) static_cast<unsigned char*>(b.pinned)[i] = static_cast<unsigned char>(i * 7);
  REQUIRE(cudaMemcpyAsync(b.device, b.pinned, b.size, kHostToDevice, b.stream) == kSuccess);
  REQUIRE(cudaEventRecord(b.event, b.stream) == kSuccess);
  CHECK(cudaEventQuery(b.event) == kErrorNotReady);  // the copy really runs later
  REQUIRE(cudaEventSynchronize(b.event) == kSuccess);
  CHECK(cudaEventQuery(b.event) == kSuccess);
  std::vector<unsigned char> back(b.size);
  REQUIRE(cudaMemcpy(back.data(), b.device, b.size, kDeviceToHost) == kSuccess);
  CHECK(std::memcmp(back.data(), b.pinned, b.size) == 0);
  CHECK(cuda_double::violations().empty());
}

TEST_CASE("cuda double: an async copy from pageable memory is caught") {
  Recording recording;
  Buffers b(4096);
  std::vector<char> pageable(4096, 1);
  CHECK(cudaMemcpyAsync(b.device, pageable.data(), 4096, kHostToDevice, b.stream) != kSuccess);
  CHECK(Recording::caught("not memory from cudaHostAlloc"));
}

TEST_CASE("cuda double: a non-portable pinned buffer feeding another device is caught") {
  Recording recording;
  Buffers b(4096);  // pinned while device 0 was current, without cudaHostAllocPortable
  REQUIRE(cudaSetDevice(1) == kSuccess);
  void* other = nullptr;
  Stream stream = nullptr;
  REQUIRE(cudaMalloc(&other, 4096) == kSuccess);
  REQUIRE(cudaStreamCreateWithFlags(&stream, kStreamNonBlocking) == kSuccess);
  REQUIRE(cudaMemcpyAsync(other, b.pinned, 4096, kHostToDevice, stream) == kSuccess);
  CHECK(Recording::caught("without cudaHostAllocPortable, feeds a copy to device 1"));
  cudaStreamDestroy(stream);
  cudaFree(other);
  cudaSetDevice(0);
}

TEST_CASE("cuda double: writing a pinned buffer while its copy is in flight is caught") {
  Recording recording;
  Buffers b(4096);
  REQUIRE(cudaMemcpyAsync(b.device, b.pinned, 4096, kHostToDevice, b.stream) == kSuccess);
  std::memset(b.pinned, 0x11, 100);  // a reader refilling the buffer too early
  REQUIRE(cudaStreamSynchronize(b.stream) == kSuccess);
  CHECK(Recording::caught("was written while its copy was in flight"));
}

TEST_CASE("cuda double: reading or exporting an arena before its copy completed is caught") {
  Recording recording;
  Buffers b(4096);
  REQUIRE(cudaMemcpyAsync(b.device, b.pinned, 4096, kHostToDevice, b.stream) == kSuccess);
  IpcMemHandle handle;
  cudaIpcGetMemHandle(&handle, b.device);
  CHECK(Recording::caught("exported while 1 copies into it are in flight"));
  std::vector<char> back(4096);
  cudaMemcpy(back.data(), b.device, 4096, kDeviceToHost);
  CHECK(Recording::caught("read while 1 copies into it are in flight"));
  // Caught, and then the read waited for the copy (like the real, synchronous cudaMemcpy) rather
  // than racing the stream's worker: the bytes are the copied ones.
  CHECK(std::vector<char>(4096, 0x5a) == back);
}

TEST_CASE("cuda double: use after free of memory, streams and events is caught") {
  Recording recording;
  void* device = nullptr;
  void* pinned = nullptr;
  Stream stream = nullptr;
  Event event = nullptr;
  REQUIRE(cudaSetDevice(0) == kSuccess);
  REQUIRE(cudaMalloc(&device, 4096) == kSuccess);
  REQUIRE(cudaHostAlloc(&pinned, 4096, 0) == kSuccess);
  REQUIRE(cudaStreamCreateWithFlags(&stream, kStreamNonBlocking) == kSuccess);
  REQUIRE(cudaEventCreateWithFlags(&event, kEventDisableTiming) == kSuccess);

  SUBCASE("device memory") {
    REQUIRE(cudaFree(device) == kSuccess);
    CHECK(cudaMemcpyAsync(device, pinned, 4096, kHostToDevice, stream) != kSuccess);
    CHECK(Recording::caught("destination used after it was freed"));
    CHECK(cudaFree(device) != kSuccess);
    CHECK(Recording::caught("freed twice"));
    IpcMemHandle handle;
    CHECK(cudaIpcGetMemHandle(&handle, device) != kSuccess);
    CHECK(Recording::caught("cudaIpcGetMemHandle"));
    cudaFreeHost(pinned);
  }
  SUBCASE("a staging buffer freed while its copy is queued") {
    REQUIRE(cudaMemcpyAsync(device, pinned, 4096, kHostToDevice, stream) == kSuccess);
    cudaFreeHost(pinned);
    CHECK(Recording::caught("queued copies still use this memory"));
    cudaFree(device);
  }
  SUBCASE("events and streams") {
    REQUIRE(cudaEventDestroy(event) == kSuccess);
    CHECK(cudaEventSynchronize(event) != kSuccess);
    CHECK(Recording::caught("used after cudaEventDestroy"));
    REQUIRE(cudaStreamDestroy(stream) == kSuccess);
    CHECK(cudaMemcpyAsync(device, pinned, 4096, kHostToDevice, stream) != kSuccess);
    CHECK(Recording::caught("used after cudaStreamDestroy"));
    cudaFree(device);
    cudaFreeHost(pinned);
    return;
  }
  cudaEventDestroy(event);
  cudaStreamDestroy(stream);
}

TEST_CASE("cuda double: without a driver every call says so, and tensorinit reports exit 69") {
  Recording recording(-1);
  int count = -1;
  CHECK(cudaGetDeviceCount(&count) == kErrorInsufficientDriver);
  CHECK(count == 0);
  auto devices = count_cuda_devices();
  REQUIRE_FALSE(devices);
  CHECK(devices.error().code == Code::unavailable);
  CHECK(devices.error().message.find("driver version is insufficient") != std::string::npos);
  CHECK(CudaArena::allocate(0, 1024).error().code == Code::unavailable);
}

}  // namespace
}  // namespace tensorinit::stage
