// The CUDA runtime calls tensorinit makes, declared here with ABI-identical types so that the
// project builds without the CUDA headers (CI's Debian has none). Three libraries define them:
// NVIDIA's static cudart (the `tensorinit` binary, when the toolkit is found), the strict test
// double (tests/cuda_double: the unit tests and `tensorinit_cudadouble`), and
// cuda_runtime_absent.cpp (a build without the toolkit: every call reports "no driver").
// tensorinit_core links none of them. tests/cuda_double/abi_check.cpp compares every declaration
// and constant here with the real cuda_runtime_api.h whenever the toolkit is present.
#pragma once

#include <cstddef>

namespace tensorinit::cudart {

using Error = int;  // cudaError_t: an enum, int-sized on every ABI CUDA supports
inline constexpr Error kSuccess = 0;
inline constexpr Error kErrorInvalidValue = 1;
inline constexpr Error kErrorMemoryAllocation = 2;
inline constexpr Error kErrorInsufficientDriver = 35;
inline constexpr Error kErrorNoDevice = 100;
inline constexpr Error kErrorNotReady = 600;

struct StreamImpl;  // CUstream_st
using Stream = StreamImpl*;
struct EventImpl;   // CUevent_st
using Event = EventImpl*;

struct IpcMemHandle {  // cudaIpcMemHandle_t
  char reserved[64];
};

using MemcpyKind = int;  // enum cudaMemcpyKind
inline constexpr MemcpyKind kHostToDevice = 1;
inline constexpr MemcpyKind kDeviceToHost = 2;

inline constexpr unsigned kHostAllocDefault = 0x00;
inline constexpr unsigned kHostAllocPortable = 0x01;
inline constexpr unsigned kStreamNonBlocking = 0x01;
inline constexpr unsigned kEventDisableTiming = 0x02;

// cudaDeviceProp changes size between releases; its first fields (char name[256]; cudaUUID_t
// uuid) have not moved since CUDA 10. tensorinit passes a buffer larger than any release's struct
// and reads only those two.
inline constexpr size_t kDevicePropBytes = 8192;
inline constexpr size_t kDevicePropUuidOffset = 256;
inline constexpr size_t kUuidBytes = 16;

#ifndef TENSORINIT_CUDART_CONSTANTS_ONLY
extern "C" {
Error cudaGetDeviceCount(int* count);
Error cudaSetDevice(int device);
Error cudaGetDeviceProperties(void* prop, int device);  // CUDA 13's unversioned symbol
const char* cudaGetErrorString(Error error);
Error cudaMalloc(void** ptr, size_t size);
Error cudaFree(void* ptr);
Error cudaHostAlloc(void** ptr, size_t size, unsigned int flags);
Error cudaFreeHost(void* ptr);
Error cudaStreamCreateWithFlags(Stream* stream, unsigned int flags);
Error cudaStreamDestroy(Stream stream);
Error cudaStreamSynchronize(Stream stream);
Error cudaEventCreateWithFlags(Event* event, unsigned int flags);
Error cudaEventDestroy(Event event);
Error cudaEventRecord(Event event, Stream stream);
Error cudaEventQuery(Event event);
Error cudaEventSynchronize(Event event);
Error cudaMemcpyAsync(void* dst, const void* src, size_t count, MemcpyKind kind, Stream stream);
Error cudaMemcpy(void* dst, const void* src, size_t count, MemcpyKind kind);  // tests and tools only
Error cudaIpcGetMemHandle(IpcMemHandle* handle, void* device_ptr);
}
#endif

}  // namespace tensorinit::cudart
