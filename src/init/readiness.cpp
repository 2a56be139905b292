#include "init/readiness.hpp"

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

namespace tensorinit::init {
namespace {

using namespace std::chrono_literals;

SignalReadiness signal_readiness_once(pid_t pid, int sig) {
  char link[32];
  ssize_t n = ::readlink("/proc/self", link, sizeof link - 1);
  if (n <= 0 || std::string_view(link, static_cast<size_t>(n)) != std::to_string(::getpid()))
    return SignalReadiness::ready;
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  if (!status) return SignalReadiness::ready;
  std::string line;
  unsigned long long caught = 0, ignored = 0, blocked = 0;
  while (std::getline(status, line)) {
    if (line.starts_with("SigCgt:")) caught = std::stoull(line.substr(7), nullptr, 16);
    if (line.starts_with("SigIgn:")) ignored = std::stoull(line.substr(7), nullptr, 16);
    if (line.starts_with("SigBlk:")) blocked = std::stoull(line.substr(7), nullptr, 16);
  }
  const unsigned long long bit = 1ULL << (sig - 1);
  if ((caught | ignored) & bit) return SignalReadiness::ready;
  if (blocked & bit) return SignalReadiness::blocked_only;
  // Inside sigwait/sigtimedwait the kernel takes the awaited signals out of the blocked mask that
  // /proc shows, so such a server looks unprepared; its wait channel gives it away.
  std::error_code ec;
  for (const auto& task : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    std::ifstream wchan(task.path() / "wchan");
    std::string where;
    if (wchan >> where && where.starts_with("do_sigtimedwait")) return SignalReadiness::blocked_only;
  }
  return SignalReadiness::not_ready;
}

constexpr int kBlockedSamples = 4;

}  // namespace

SignalReadiness signal_readiness(pid_t pid, int sig) {
  SignalReadiness first = signal_readiness_once(pid, sig);
  for (int i = 1; i < kBlockedSamples && first == SignalReadiness::blocked_only; ++i) {
    std::this_thread::sleep_for(1ms);
    if (signal_readiness_once(pid, sig) != SignalReadiness::blocked_only) return SignalReadiness::not_ready;
  }
  return first;
}

}  // namespace tensorinit::init
