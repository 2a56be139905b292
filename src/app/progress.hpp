// Progress while staging: a bar with bytes, GB/s and ETA on a terminal; a log line every few
// seconds otherwise. Runs on its own thread until destroyed.
#pragma once

#include <atomic>
#include <cstdint>
#include <thread>

namespace tensorinit::app {

class ProgressDisplay {
 public:
  ProgressDisplay(uint64_t total, const std::atomic<uint64_t>& done);
  ~ProgressDisplay();  // stops the thread and clears the bar

 private:
  void loop(std::stop_token stop);

  uint64_t total_;
  const std::atomic<uint64_t>& done_;
  bool tty_;
  std::jthread thread_;
};

}  // namespace tensorinit::app
