// A C++ server's side of the cuda target: open each device arena of the tensor table through its
// IPC handle and use the tensors in place (no copy). Built when the CUDA toolkit is found
// (target tensorinit_cuda_consumer); tests/gpu/run.sh runs it as the server in signal mode.
//
//   tensorinit_cuda_consumer [TABLE]            one line per tensor: name, device pointer
//   tensorinit_cuda_consumer --sha256 [TABLE]   copies every tensor back and prints "sha256  name"
//   tensorinit_cuda_consumer --bandwidth MiB    raw pinned host->device cudaMemcpy, GB/s
//   --exporter-check (before the others)        first drops CAP_SYS_PTRACE and prints on stderr
//                                               whether it has ptrace access to its parent (the
//                                               exporter, tensorinit), exporter_access.hpp; alone:
//                                               only that, no CUDA call (machines without a GPU)
//
// TABLE defaults to $TENSORINIT_TABLE. The arena pointer is valid while tensorinit lives.
#include <cuda_runtime_api.h>
#include <sodium.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "exporter_access.hpp"

namespace {

void check(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return;
  std::fprintf(stderr, "cuda_consumer: %s: %s\n", what, cudaGetErrorString(e));
  std::exit(1);
}

// The table's device ordinal is tensorinit's; this process may see devices in another order
// (CUDA_VISIBLE_DEVICES), so the UUID decides.
int local_device(const nlohmann::json& ipc) {
  int count = 0;
  check(cudaGetDeviceCount(&count), "cudaGetDeviceCount");
  for (int d = 0; d < count; ++d) {
    cudaDeviceProp prop;
    check(cudaGetDeviceProperties(&prop, d), "cudaGetDeviceProperties");
    char uuid[64];
    const auto* u = reinterpret_cast<const unsigned char*>(prop.uuid.bytes);
    std::snprintf(uuid, sizeof uuid, "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1],
                  u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
    if (ipc.value("uuid", "") == uuid) return d;
  }
  return ipc.at("device").get<int>();
}

void* open_arena(const nlohmann::json& arena) {
  const auto& ipc = arena.at("ipc");
  const std::string hex = ipc.at("handle");
  cudaIpcMemHandle_t handle;
  for (size_t i = 0; i < sizeof handle.reserved; ++i)
    handle.reserved[i] = static_cast<char>(std::stoi(hex.substr(2 * i, 2), nullptr, 16));
  check(cudaSetDevice(local_device(ipc)), "cudaSetDevice");
  void* base = nullptr;
  check(cudaIpcOpenMemHandle(&base, handle, cudaIpcMemLazyEnablePeerAccess), "cudaIpcOpenMemHandle");
  return base;
}

int bandwidth(size_t mib) {
  const size_t n = mib << 20;
  void *host = nullptr, *dev = nullptr;
  check(cudaHostAlloc(&host, n, cudaHostAllocDefault), "cudaHostAlloc");
  check(cudaMalloc(&dev, n), "cudaMalloc");
  std::memset(host, 1, n);
  check(cudaMemcpy(dev, host, n, cudaMemcpyHostToDevice), "warm-up copy");
  double best = 0;
  for (int i = 0; i < 5; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    check(cudaMemcpy(dev, host, n, cudaMemcpyHostToDevice), "cudaMemcpy");
    best = std::max(best, n / std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / 1e9);
  }
  std::printf("%.2f\n", best);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (!args.empty() && args[0] == "--exporter-check") {
    args.erase(args.begin());
    std::fprintf(stderr, "cuda_consumer: %s\n", exporter_access::probe(getppid()).line.c_str());
    if (args.empty()) return 0;
  }
  if (args.size() == 2 && args[0] == "--bandwidth") return bandwidth(std::stoul(args[1]));
  const bool sha = !args.empty() && args[0] == "--sha256";
  if (sha) args.erase(args.begin());
  const char* env = std::getenv("TENSORINIT_TABLE");
  const std::string path = !args.empty() ? args[0] : env ? env : "";
  std::ifstream in(path);
  if (!in) return std::fprintf(stderr, "cuda_consumer: cannot read the table '%s'\n", path.c_str()), 1;
  const auto table = nlohmann::json::parse(in);
  std::vector<std::byte*> bases;
  for (const auto& arena : table.at("arenas"))
    bases.push_back(static_cast<std::byte*>(arena.contains("ipc") ? open_arena(arena) : nullptr));
  if (sodium_init() < 0) return 1;
  std::vector<unsigned char> host;
  for (const auto& t : table.at("tensors")) {
    std::byte* p = bases.at(t.at("arena").get<size_t>()) + t.at("offset").get<size_t>();  // the tensor, in HBM
    const size_t bytes = t.at("bytes");
    if (!sha) {
      std::printf("%s %p %zu\n", t.at("name").get<std::string>().c_str(), static_cast<void*>(p), bytes);
      continue;
    }
    host.resize(bytes);
    if (bytes) check(cudaMemcpy(host.data(), p, bytes, cudaMemcpyDeviceToHost), "cudaMemcpy back");
    unsigned char digest[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(digest, host.data(), bytes);
    for (unsigned char c : digest) std::printf("%02x", c);
    std::printf("  %s\n", t.at("name").get<std::string>().c_str());
  }
  return 0;
}
