#include "init/reaper.hpp"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <charconv>
#include <string>
#include <unordered_map>
#include <vector>

#include "util/fd.hpp"
#include "util/proc_stat.hpp"

namespace tensorinit::init {
namespace {

std::unordered_map<pid_t, ProcStat> scan_proc() {
  std::unordered_map<pid_t, ProcStat> table;
  DIR* dir = ::opendir("/proc");
  if (dir == nullptr) return table;
  while (dirent* e = ::readdir(dir)) {
    pid_t pid = 0;
    auto [p, ec] = std::from_chars(e->d_name, e->d_name + strlen(e->d_name), pid);
    if (ec != std::errc() || *p != '\0') continue;
    if (auto entry = read_proc_stat(pid)) table.emplace(pid, *entry);
  }
  ::closedir(dir);
  return table;
}

// `pid` is /proc's number for it (another namespace's when /proc was not mounted for ours). The
// /proc/PID directory held open is a pidfd for that very process (pidfd_send_signal takes one,
// Linux 5.1+): the signal hits exactly the process we looked at, or nobody (ESRCH).
bool signal_checked(pid_t pid, const ProcStat& seen, int sig) {
  UniqueFd dir(::open(("/proc/" + std::to_string(pid)).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir) return false;
  auto now = read_proc_stat(pid);
  if (!now || now->start_time != seen.start_time) return false;
  if (::syscall(SYS_pidfd_send_signal, dir.get(), sig, nullptr, 0) == 0) return true;
  return errno == ENOSYS && proc_is_ours() && ::kill(pid, sig) == 0;
}

}  // namespace

bool become_subreaper() {
  if (::getpid() == 1) return true;
  return ::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0;
}

bool reap_exited(const std::function<void(pid_t, int)>& on_change) {
  for (;;) {
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, WNOHANG | WUNTRACED);
    if (pid > 0) {
      on_change(pid, status);
      continue;
    }
    if (pid == 0) return true;
    if (errno == EINTR) continue;
    return false;  // ECHILD
  }
}

int signal_descendants(int sig) {
  if (::getpid() == 1) return ::kill(-1, sig) == 0 ? 1 : 0;
  const auto self = proc_pid(::getpid());  // the walk is in /proc's numbers, whichever namespace's
  if (!self) return 0;
  auto table = scan_proc();
  // Breadth-first from us over the parent links.
  std::unordered_map<pid_t, std::vector<pid_t>> children;
  for (const auto& [pid, entry] : table) children[entry.ppid].push_back(pid);
  std::vector<pid_t> queue{*self};
  int signalled = 0;
  for (size_t i = 0; i < queue.size(); ++i) {
    auto it = children.find(queue[i]);
    if (it == children.end()) continue;
    for (pid_t child : it->second) {
      queue.push_back(child);
      if (signal_checked(child, table[child], sig)) ++signalled;
    }
  }
  return signalled;
}

}  // namespace tensorinit::init
