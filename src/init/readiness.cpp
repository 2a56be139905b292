#include "init/readiness.hpp"

#include <errno.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "util/proc_stat.hpp"

namespace tensorinit::init {

SignalReadiness signal_readiness(pid_t pid, int sig, ReadinessScan scan) {
  // On another namespace's /proc (unshare -p without --mount-proc), /proc/PID is another process:
  // look the server up by the number that /proc knows it by.
  // With no /proc at all there is nothing to wait on: the signal goes at once. Any other failure
  // is "not yet", polled again: EMFILE among them (the readiness socket's clients can take the
  // last descriptors), where a guess of "ready" killed a server without its handler.
  struct stat st{};
  if (::stat("/proc/self", &st) != 0 && errno == ENOENT) return SignalReadiness::ready;
  const auto there = proc_pid(pid);
  if (!there) return SignalReadiness::not_ready;
  const std::string proc = "/proc/" + std::to_string(*there);
  std::ifstream status(proc + "/status");
  if (!status) return SignalReadiness::not_ready;
  std::string line;
  unsigned long long caught = 0, blocked = 0;
  while (std::getline(status, line)) {
    if (line.starts_with("SigCgt:")) caught = std::stoull(line.substr(7), nullptr, 16);
    if (line.starts_with("SigBlk:")) blocked = std::stoull(line.substr(7), nullptr, 16);
  }
  const unsigned long long bit = 1ULL << (sig - 1);
  // Ignored is not ready: an ignored signal is discarded, and a server started with it ignored
  // (inherited, tini's rule) that installs its handler later would wait for it forever.
  if (caught & bit) return SignalReadiness::ready;
  // Inside sigwait/sigtimedwait the kernel takes the awaited signals out of the blocked mask that
  // /proc shows, so such a server looks unprepared; its wait channel gives it away. But a thread
  // waiting so counts only when every other thread blocks the signal: one that has it unblocked
  // takes it with the default action (SIGUSR1 kills the whole server), and the waiting thread may
  // wait for other signals (a shutdown thread in sigwait for SIGTERM: such a server was killed).
  const auto waits = [](const std::string& wchan_path) {
    std::ifstream wchan(wchan_path);
    std::string where;
    return wchan >> where && where.starts_with("do_sigtimedwait");
  };
  // Quick: the main thread's wait channel alone; waiting there is only a hint, the full look decides.
  if (scan == ReadinessScan::quick && !waits(proc + "/wchan")) return SignalReadiness::not_ready;
  std::error_code ec;
  namespace fs = std::filesystem;
  bool in_sigwait = false;
  for (fs::directory_iterator it(proc + "/task", ec), end; !ec && it != end; it.increment(ec)) {
    if (waits(it->path() / "wchan")) {
      in_sigwait = true;
      continue;
    }
    unsigned long long task_blocked = 0;
    std::ifstream task_status(it->path() / "status");
    while (std::getline(task_status, line))
      if (line.starts_with("SigBlk:")) task_blocked = std::stoull(line.substr(7), nullptr, 16);
    if (!(task_blocked & bit)) return SignalReadiness::not_ready;
  }
  if (ec) return SignalReadiness::not_ready;  // not every thread seen
  if (in_sigwait) return SignalReadiness::waits_for_it;
  if (!(blocked & bit)) return SignalReadiness::not_ready;
  // Blocked for good and read through a signalfd: its fdinfo has "sigmask:\t<hex>".
  for (fs::directory_iterator it(proc + "/fdinfo", ec), end; !ec && it != end; it.increment(ec)) {
    std::ifstream info(it->path());
    while (std::getline(info, line))
      if (line.starts_with("sigmask:") && (std::stoull(line.substr(8), nullptr, 16) & bit))
        return SignalReadiness::waits_for_it;
  }
  return SignalReadiness::not_ready;
}

ReadyPoll next_ready_poll(unsigned polls) {
  using std::chrono::milliseconds;
  const ReadinessScan every_tenth = polls % 10 == 0 ? ReadinessScan::full : ReadinessScan::quick;
  if (polls < 100) return {milliseconds(10), ReadinessScan::full};
  if (polls < 500) return {milliseconds(10), every_tenth};
  return {milliseconds(100), every_tenth};
}

}  // namespace tensorinit::init
