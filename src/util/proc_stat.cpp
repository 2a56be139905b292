#include "util/proc_stat.hpp"

#include <fcntl.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <charconv>
#include <string>
#include <string_view>

#include "util/fd.hpp"

namespace tensorinit {

std::optional<ProcStat> read_proc_stat(pid_t pid) {
  char path[64];
  if (pid == 0) snprintf(path, sizeof path, "/proc/self/stat");
  else snprintf(path, sizeof path, "/proc/%d/stat", pid);
  UniqueFd fd(::open(path, O_RDONLY | O_CLOEXEC));
  if (!fd) return std::nullopt;
  char buf[1024];
  ssize_t n = ::read(fd.get(), buf, sizeof buf - 1);
  if (n <= 0) return std::nullopt;
  std::string_view text(buf, static_cast<size_t>(n));
  size_t close = text.rfind(')');
  if (close == std::string_view::npos || close + 2 > text.size()) return std::nullopt;
  // After ") ": state(3) ppid(4) ... starttime(22).
  std::string_view rest = text.substr(close + 2);
  ProcStat out;
  int field = 3;
  size_t pos = 0;
  while (pos < rest.size() && field <= 22) {
    size_t end = rest.find(' ', pos);
    if (end == std::string_view::npos) end = rest.size();
    std::string_view token = rest.substr(pos, end - pos);
    if (field == 3 && !token.empty()) out.state = token[0];
    if (field == 4) std::from_chars(token.data(), token.data() + token.size(), out.ppid);
    if (field == 22) std::from_chars(token.data(), token.data() + token.size(), out.start_time);
    pos = end + 1;
    ++field;
  }
  if (field <= 22) return std::nullopt;
  return out;
}

bool proc_is_ours() {
  char link[32];
  const ssize_t n = ::readlink("/proc/self", link, sizeof link - 1);
  return n > 0 && std::string_view(link, static_cast<size_t>(n)) == std::to_string(::getpid());
}

std::optional<pid_t> proc_pid(pid_t pid) {
  if (proc_is_ours()) return pid;
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (!pidfd) return std::nullopt;
  char path[64];
  snprintf(path, sizeof path, "/proc/self/fdinfo/%d", pidfd.get());
  UniqueFd fd(::open(path, O_RDONLY | O_CLOEXEC));
  if (!fd) return std::nullopt;
  char buf[512];
  const ssize_t n = ::read(fd.get(), buf, sizeof buf - 1);
  if (n <= 0) return std::nullopt;
  std::string_view text(buf, static_cast<size_t>(n));
  // "Pid:\t<n>": 0 when that /proc's namespace cannot see the process, -1 once it is gone.
  const size_t at = text.find("\nPid:\t");
  if (at == std::string_view::npos) return std::nullopt;
  pid_t there = 0;
  const char* first = text.data() + at + 6;
  std::from_chars(first, text.data() + text.size(), there);
  if (there <= 0) return std::nullopt;
  return there;
}

}  // namespace tensorinit
