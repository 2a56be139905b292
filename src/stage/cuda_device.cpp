#include "stage/cuda_device.hpp"

#include <array>
#include <fmt/format.h>
#include <vector>

#include "stage/cuda_runtime.hpp"

namespace tensorinit::stage {

std::string cuda_message(std::string_view call, int error) {
  return fmt::format("{}: {} (error {})", call, cudart::cudaGetErrorString(error), error);
}

Result<int> count_cuda_devices() {
  int count = 0;
  if (const int e = cudart::cudaGetDeviceCount(&count); e != cudart::kSuccess)
    return fail(Code::unavailable, cuda_message("cudaGetDeviceCount", e));
  if (count <= 0) return fail(Code::unavailable, "cudaGetDeviceCount: no CUDA device");
  return count;
}

Status start_cuda(const std::vector<int>& devices) {
  for (int d : devices) {
    if (const int e = cudart::cudaSetDevice(d); e != cudart::kSuccess)
      return fail(Code::unavailable, cuda_message(fmt::format("cudaSetDevice({})", d), e));
    if (const int e = cudart::cudaFree(nullptr); e != cudart::kSuccess)
      return fail(Code::unavailable, cuda_message(fmt::format("creating the context of cuda:{}", d), e));
  }
  return {};
}

Result<CudaArena> CudaArena::allocate(int device, uint64_t bytes) {
  if (const int e = cudart::cudaSetDevice(device); e != cudart::kSuccess)
    return fail(Code::unavailable, cuda_message(fmt::format("cudaSetDevice({})", device), e));
  void* p = nullptr;
  // cudaMalloc returns 256-byte (in practice 2 MiB) aligned memory, so arena offsets that are
  // multiples of 256 give 256-aligned tensors. An empty model still gets a real allocation to export.
  const uint64_t size = std::max<uint64_t>(bytes, 256);
  if (const int e = cudart::cudaMalloc(&p, size); e != cudart::kSuccess)
    return fail(e == cudart::kErrorMemoryAllocation ? Code::unavailable : Code::io,
                cuda_message(fmt::format("cudaMalloc({} bytes on cuda:{})", size, device), e));
  return CudaArena(device, static_cast<std::byte*>(p), bytes);
}

CudaArena::CudaArena(CudaArena&& other) noexcept : device_(other.device_), data_(other.data_), size_(other.size_) {
  other.data_ = nullptr;
}

CudaArena::~CudaArena() {
  if (!data_) return;
  cudart::cudaSetDevice(device_);
  cudart::cudaFree(data_);
}

Result<CudaIpcExport> CudaArena::export_ipc() const {
  if (const int e = cudart::cudaSetDevice(device_); e != cudart::kSuccess)
    return fail(Code::io, cuda_message(fmt::format("cudaSetDevice({})", device_), e));
  cudart::IpcMemHandle handle{};
  if (const int e = cudart::cudaIpcGetMemHandle(&handle, data_); e != cudart::kSuccess)
    return fail(Code::io, cuda_message(fmt::format("cudaIpcGetMemHandle (cuda:{})", device_), e));
  std::vector<unsigned char> prop(cudart::kDevicePropBytes);
  if (const int e = cudart::cudaGetDeviceProperties(prop.data(), device_); e != cudart::kSuccess)
    return fail(Code::io, cuda_message(fmt::format("cudaGetDeviceProperties({})", device_), e));
  CudaIpcExport out;
  for (unsigned char c : handle.reserved) out.handle_hex += fmt::format("{:02x}", c);
  const unsigned char* u = prop.data() + cudart::kDevicePropUuidOffset;
  out.uuid = "GPU-";
  for (size_t i = 0; i < cudart::kUuidBytes; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out.uuid += '-';
    out.uuid += fmt::format("{:02x}", u[i]);
  }
  return out;
}

}  // namespace tensorinit::stage
