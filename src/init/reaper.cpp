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

// /proc describes our PID namespace only when it was mounted for it (`unshare -p` without
// --mount-proc leaves the host's /proc, where our pids mean other processes).
bool proc_is_ours() {
  char link[32];
  ssize_t n = ::readlink("/proc/self", link, sizeof link - 1);
  if (n <= 0) return false;
  link[n] = '\0';
  return std::to_string(::getpid()) == link;
}

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

// pidfd_send_signal hits exactly the process we looked at, or nobody (ESRCH).
bool signal_checked(pid_t pid, const ProcStat& seen, int sig) {
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (!pidfd) return errno == ENOSYS && ::kill(pid, sig) == 0;
  auto now = read_proc_stat(pid);
  if (!now || now->start_time != seen.start_time) return false;
  return ::syscall(SYS_pidfd_send_signal, pidfd.get(), sig, nullptr, 0) == 0;
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
  const pid_t self = ::getpid();
  if (self == 1) return ::kill(-1, sig) == 0 ? 1 : 0;
  if (!proc_is_ours()) return 0;
  auto table = scan_proc();
  // Breadth-first from us over the parent links.
  std::unordered_map<pid_t, std::vector<pid_t>> children;
  for (const auto& [pid, entry] : table) children[entry.ppid].push_back(pid);
  std::vector<pid_t> queue{self};
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
