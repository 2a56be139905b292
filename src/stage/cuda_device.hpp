// CUDA devices as tensorinit sees them: whether any exist, and one arena of device memory each.
// Calls the runtime declared in cuda_runtime.hpp (cudart, the test double, or
// cuda_runtime_absent.cpp, which reports "no CUDA" when built without the toolkit).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "util/error.hpp"

namespace tensorinit::stage {

// "cudaMalloc: out of memory (error 2)".
std::string cuda_message(std::string_view call, int error);

// How many CUDA devices there are (cudaGetDeviceCount); the error says why there are none.
Result<int> count_cuda_devices();

// Creates the primary context of each of `devices` (cudaSetDevice + cudaFree(nullptr)): the slow
// part of CUDA start-up (hundreds of milliseconds on a real driver), safe to run on its own thread
// while the manifest, plan and index are worked out.
Status start_cuda(const std::vector<int>& devices);

// The export of one device allocation to another process (contract: the table's "ipc" object).
struct CudaIpcExport {
  std::string handle_hex;  // cudaIpcMemHandle_t, 64 bytes as 128 lowercase hex digits
  std::string uuid;        // "GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", as nvidia-smi prints it
};

// One device's arena: cudaMalloc'd memory, freed on destruction. Move-only; not thread-safe to
// destroy while copies into it are queued (the sink that fills it must be gone first).
class CudaArena {
 public:
  static Result<CudaArena> allocate(int device, uint64_t bytes);
  CudaArena(CudaArena&& other) noexcept;
  CudaArena& operator=(CudaArena&&) = delete;
  CudaArena(const CudaArena&) = delete;
  ~CudaArena();

  int device() const { return device_; }
  std::byte* data() const { return data_; }
  uint64_t size() const { return size_; }

  // cudaIpcGetMemHandle + the device's UUID. Only once every copy into the arena has completed.
  Result<CudaIpcExport> export_ipc() const;

 private:
  CudaArena(int device, std::byte* data, uint64_t size) : device_(device), data_(data), size_(size) {}
  int device_;
  std::byte* data_;
  uint64_t size_;
};

}  // namespace tensorinit::stage
