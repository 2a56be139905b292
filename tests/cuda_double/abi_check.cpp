// Built only where the CUDA toolkit exists: checks, at compile time, that every declaration in
// src/stage/cuda_runtime.hpp has the real runtime's ABI. The two headers cannot meet in one
// translation unit (same extern "C" names), so this one restates the declared signatures with the
// real types and compares them with the real header's.
#include <cuda_runtime_api.h>

#include <cstddef>
#include <type_traits>

#define TENSORINIT_CUDART_CONSTANTS_ONLY  // our constants and types, without the clashing functions
#include "stage/cuda_runtime.hpp"

namespace ours = tensorinit::cudart;

static_assert(sizeof(cudaError_t) == sizeof(int) && sizeof(cudaMemcpyKind) == sizeof(int));
static_assert(sizeof(cudaIpcMemHandle_t) == 64);
static_assert(offsetof(cudaDeviceProp, name) == 0);
static_assert(sizeof(ours::IpcMemHandle) == sizeof(cudaIpcMemHandle_t));
static_assert(offsetof(cudaDeviceProp, uuid) == ours::kDevicePropUuidOffset && sizeof(cudaUUID_t) == ours::kUuidBytes);
static_assert(sizeof(cudaDeviceProp) <= ours::kDevicePropBytes);
static_assert(cudaSuccess == ours::kSuccess && cudaErrorInvalidValue == ours::kErrorInvalidValue &&
              cudaErrorMemoryAllocation == ours::kErrorMemoryAllocation &&
              cudaErrorInsufficientDriver == ours::kErrorInsufficientDriver && cudaErrorNoDevice == ours::kErrorNoDevice &&
              cudaErrorNotReady == ours::kErrorNotReady);
static_assert(cudaMemcpyHostToDevice == ours::kHostToDevice && cudaMemcpyDeviceToHost == ours::kDeviceToHost);
static_assert(cudaHostAllocDefault == ours::kHostAllocDefault && cudaHostAllocPortable == ours::kHostAllocPortable && cudaStreamNonBlocking == ours::kStreamNonBlocking &&
              cudaEventDisableTiming == ours::kEventDisableTiming);

#define SAME(fn, type) static_assert(std::is_same_v<decltype(&fn), type>, #fn " differs from cuda_runtime.hpp")
SAME(cudaGetDeviceCount, cudaError_t (*)(int*));
SAME(cudaSetDevice, cudaError_t (*)(int));
SAME(cudaGetDeviceProperties, cudaError_t (*)(cudaDeviceProp*, int));
SAME(cudaGetErrorString, const char* (*)(cudaError_t));
SAME(cudaMalloc, cudaError_t (*)(void**, size_t));
SAME(cudaFree, cudaError_t (*)(void*));
SAME(cudaHostAlloc, cudaError_t (*)(void**, size_t, unsigned int));
SAME(cudaFreeHost, cudaError_t (*)(void*));
SAME(cudaStreamCreateWithFlags, cudaError_t (*)(cudaStream_t*, unsigned int));
SAME(cudaStreamDestroy, cudaError_t (*)(cudaStream_t));
SAME(cudaStreamSynchronize, cudaError_t (*)(cudaStream_t));
SAME(cudaEventCreateWithFlags, cudaError_t (*)(cudaEvent_t*, unsigned int));
SAME(cudaEventDestroy, cudaError_t (*)(cudaEvent_t));
SAME(cudaEventRecord, cudaError_t (*)(cudaEvent_t, cudaStream_t));
SAME(cudaEventQuery, cudaError_t (*)(cudaEvent_t));
SAME(cudaEventSynchronize, cudaError_t (*)(cudaEvent_t));
SAME(cudaMemcpyAsync, cudaError_t (*)(void*, const void*, size_t, cudaMemcpyKind, cudaStream_t));
SAME(cudaMemcpy, cudaError_t (*)(void*, const void*, size_t, cudaMemcpyKind));
SAME(cudaIpcGetMemHandle, cudaError_t (*)(cudaIpcMemHandle_t*, void*));
