#include "stage/cuda_startup.hpp"

#include <doctest/doctest.h>

#include "cuda_double.hpp"

namespace tensorinit::stage {
namespace {

struct Devices {
  explicit Devices(int n) { cuda_double::configure({.devices = n, .copy_delay_us = 0, .abort_on_violation = false}); }
  ~Devices() { cuda_double::configure({}); }
};

TEST_CASE("cuda startup: runs on its own thread for cuda and auto, not for host") {
  Devices two(2);
  CudaStartup host(Target::host, std::vector<int>{0});
  CHECK_FALSE(host.started());
  CudaStartup cuda(Target::cuda, std::vector<int>{1, 0});
  CHECK(cuda.started());
  CHECK(cuda.wait());
  CHECK(cuda.seconds() >= 0);
  CudaStartup missing(Target::automatic, std::vector<int>{0, 2});
  REQUIRE_FALSE(missing.wait());
  CHECK(missing.wait().error().message == "stage.devices: cuda:2 does not exist (2 CUDA devices)");
}

TEST_CASE("cuda startup: no driver is Code::unavailable with the runtime's reason") {
  Devices none(-1);
  CudaStartup cuda(Target::cuda, std::vector<int>{0});
  REQUIRE_FALSE(cuda.wait());
  CHECK(cuda.wait().error().code == Code::unavailable);
  CHECK(cuda.wait().error().message.find("cudaGetDeviceCount: CUDA driver version is insufficient") != std::string::npos);
}

}  // namespace
}  // namespace tensorinit::stage
