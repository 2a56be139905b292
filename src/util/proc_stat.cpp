#include "util/proc_stat.hpp"

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include <charconv>
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

}  // namespace tensorinit
