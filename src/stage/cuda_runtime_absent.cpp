// The CUDA runtime of a build without the CUDA toolkit: every call says there is no driver, so
// `target: cuda` fails with exit 69 and `target: auto` picks host. Linked only into `tensorinit`
// when find_package(CUDAToolkit) finds nothing (CMakeLists.txt keeps it out of tensorinit_core).
#include "stage/cuda_runtime.hpp"

namespace tensorinit::cudart {
namespace {
constexpr Error kAbsent = kErrorInsufficientDriver;
}

extern "C" {
Error cudaGetDeviceCount(int* count) { return *count = 0, kAbsent; }
Error cudaSetDevice(int) { return kAbsent; }
Error cudaGetDeviceProperties(void*, int) { return kAbsent; }
const char* cudaGetErrorString(Error error) {
  return error == kAbsent ? "this tensorinit was built without the CUDA runtime" : "CUDA error";
}
Error cudaMalloc(void**, size_t) { return kAbsent; }
Error cudaFree(void*) { return kAbsent; }
Error cudaHostAlloc(void**, size_t, unsigned int) { return kAbsent; }
Error cudaFreeHost(void*) { return kAbsent; }
Error cudaStreamCreateWithFlags(Stream*, unsigned int) { return kAbsent; }
Error cudaStreamDestroy(Stream) { return kAbsent; }
Error cudaStreamSynchronize(Stream) { return kAbsent; }
Error cudaEventCreateWithFlags(Event*, unsigned int) { return kAbsent; }
Error cudaEventDestroy(Event) { return kAbsent; }
Error cudaEventRecord(Event, Stream) { return kAbsent; }
Error cudaEventQuery(Event) { return kAbsent; }
Error cudaEventSynchronize(Event) { return kAbsent; }
Error cudaMemcpyAsync(void*, const void*, size_t, MemcpyKind, Stream) { return kAbsent; }
Error cudaMemcpy(void*, const void*, size_t, MemcpyKind) { return kAbsent; }
Error cudaIpcGetMemHandle(IpcMemHandle*, void*) { return kAbsent; }
}

}  // namespace tensorinit::cudart
