#include "stage/cuda_startup.hpp"

#include <chrono>
#include <fmt/format.h>

#include "stage/cuda_device.hpp"

namespace tensorinit::stage {

Status check_cuda_devices(const std::vector<int>& devices) {
  auto count = count_cuda_devices();
  if (!count) return std::unexpected(count.error());
  for (int d : devices)
    if (d < 0 || d >= *count)
      return fail(Code::unavailable, fmt::format("stage.devices: cuda:{} does not exist ({} CUDA device{})", d, *count,
                                                 *count == 1 ? "" : "s"));
  return {};
}

CudaStartup::CudaStartup(Target target, std::vector<int> devices) {
  if (target != Target::cuda && target != Target::automatic) return;
  thread_ = std::thread([this, devices = std::move(devices)] {
    const auto t0 = std::chrono::steady_clock::now();
    result_ = check_cuda_devices(devices);
    if (result_) result_ = start_cuda(devices);
    seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  });
}

CudaStartup::~CudaStartup() {
  if (thread_.joinable()) thread_.join();
}

const Status& CudaStartup::wait() {
  if (thread_.joinable()) thread_.join(), joined_ = true;
  return result_;
}

}  // namespace tensorinit::stage
