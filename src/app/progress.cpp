#include "app/progress.hpp"

#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <fmt/format.h>
#include <mutex>

#include "util/log.hpp"
#include "util/units.hpp"

namespace tensorinit::app {
namespace {

using Clock = std::chrono::steady_clock;

std::string bar_line(uint64_t done, uint64_t total, double seconds) {
  constexpr int kWidth = 30;
  const double frac = total ? static_cast<double>(done) / static_cast<double>(total) : 1.0;
  const double rate = seconds > 0 ? static_cast<double>(done) / seconds : 0;
  const double eta = rate > 0 ? static_cast<double>(total - done) / rate : 0;
  const int filled = static_cast<int>(frac * kWidth);
  return fmt::format("\rtensorinit: [{:=<{}}{: <{}}] {} / {}  {:.2f} GB/s  ETA {:.0f}s ", "", filled, "",
                     kWidth - filled, format_bytes(done), format_bytes(total), rate / 1e9, eta);
}

}  // namespace

ProgressDisplay::ProgressDisplay(uint64_t total, const std::atomic<uint64_t>& done)
    : total_(total), done_(done), tty_(::isatty(STDERR_FILENO) == 1) {
  thread_ = std::jthread([this](std::stop_token stop) { loop(stop); });
}

ProgressDisplay::~ProgressDisplay() {
  thread_.request_stop();
  thread_.join();
  if (tty_) {
    const std::string clear = "\r\033[K";
    [[maybe_unused]] auto n = ::write(STDERR_FILENO, clear.data(), clear.size());
  }
}

void ProgressDisplay::loop(std::stop_token stop) {
  const auto start = Clock::now();
  const auto period = tty_ ? std::chrono::milliseconds(200) : std::chrono::milliseconds(5000);
  std::mutex m;
  std::condition_variable_any cv;
  std::unique_lock lock(m);
  while (!stop.stop_requested()) {
    cv.wait_for(lock, stop, period, [] { return false; });
    if (stop.stop_requested()) return;
    const uint64_t done = done_.load(std::memory_order_relaxed);
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    if (tty_) {
      const std::string line = bar_line(done, total_, seconds);
      [[maybe_unused]] auto n = ::write(STDERR_FILENO, line.data(), line.size());
    } else {
      log::info(fmt::format("staged {} of {} ({:.2f} GB/s)", format_bytes(done), format_bytes(total_),
                            seconds > 0 ? static_cast<double>(done) / seconds / 1e9 : 0.0));
    }
  }
}

}  // namespace tensorinit::app
