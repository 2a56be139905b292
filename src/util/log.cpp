#include "util/log.hpp"

#include <unistd.h>

#include <atomic>
#include <string>

#include "util/redact.hpp"

namespace tensorinit::log {
namespace {

std::atomic<bool> quiet{false};

// One write(2) per line so lines from several threads never interleave. Messages quote user input
// (paths, names, values): control characters are escaped, so that a line is always one line.
void emit(std::string_view prefix, std::string_view raw) {
  const std::string message = printable(raw);
  std::string line;
  line.reserve(prefix.size() + message.size() + 1);
  line.append(prefix).append(message).push_back('\n');
  const char* p = line.data();
  size_t left = line.size();
  while (left > 0) {
    ssize_t n = ::write(STDERR_FILENO, p, left);
    if (n <= 0) return;
    p += n;
    left -= static_cast<size_t>(n);
  }
}

}  // namespace

void info(std::string_view message) {
  if (!quiet.load(std::memory_order_relaxed)) emit("tensorinit: ", message);
}
void warn(std::string_view message) { emit("tensorinit: warning: ", message); }
void error(std::string_view message) { emit("tensorinit: error: ", message); }
void set_quiet(bool q) { quiet.store(q, std::memory_order_relaxed); }

}  // namespace tensorinit::log
