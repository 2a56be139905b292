// CUDA start-up on its own thread: the device check and each device's primary context (hundreds
// of milliseconds on a real driver), begun as soon as the manifest is read so that it overlaps
// the plan and index phases; stage_model waits for it instead of paying for it in the stage phase.
#pragma once

#include <thread>
#include <vector>

#include "stage/request.hpp"
#include "util/error.hpp"

namespace tensorinit::stage {

// Whether every device in `devices` exists; the error says why not (no driver, no device, range).
Status check_cuda_devices(const std::vector<int>& devices);

class CudaStartup {
 public:
  // Starts the thread when `target` is cuda or auto; otherwise does nothing.
  CudaStartup(Target target, std::vector<int> devices);
  ~CudaStartup();  // joins
  CudaStartup(const CudaStartup&) = delete;
  CudaStartup& operator=(const CudaStartup&) = delete;

  bool started() const { return thread_.joinable() || joined_; }
  // Waits for the thread: success when every device in `devices` exists and has a context.
  // Not thread-safe: one caller (stage_model) waits.
  const Status& wait();
  double seconds() const { return seconds_; }  // the thread's own wall time: the phase to report

 private:
  std::thread thread_;
  bool joined_ = false;
  Status result_;
  double seconds_ = 0;
};

}  // namespace tensorinit::stage
