#include "util/ioprio.hpp"

#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fmt/format.h>

#include "util/log.hpp"

namespace tensorinit {
namespace {

// <linux/ioprio.h>: the class in the top 3 bits of a 16-bit value, the level in the low 13.
constexpr int kWhoProcess = 1;  // IOPRIO_WHO_PROCESS; with id 0: the calling thread
constexpr int kClassShift = 13;

const char* class_name(IoClass c) {
  switch (c) {
    case IoClass::none: return "none";
    case IoClass::realtime: return "realtime";
    case IoClass::best_effort: return "best-effort";
    case IoClass::idle: return "idle";
  }
  return "?";
}

}  // namespace

Result<IoPriority> thread_io_priority() {
  const long v = ::syscall(SYS_ioprio_get, kWhoProcess, 0);
  if (v < 0) return fail(Code::io, fmt::format("ioprio_get: {}", std::strerror(errno)));
  return IoPriority{static_cast<IoClass>(v >> kClassShift), static_cast<int>(v & ((1 << kClassShift) - 1))};
}

Status set_thread_io_priority(IoPriority p) {
  const bool has_level = p.cls == IoClass::realtime || p.cls == IoClass::best_effort;
  const int value = (static_cast<int>(p.cls) << kClassShift) | (has_level ? p.level : 0);
  if (::syscall(SYS_ioprio_set, kWhoProcess, 0, value) == 0) return {};
  const int err = errno;
  return fail(err == EPERM ? Code::denied : Code::io,
              fmt::format("ioprio_set {} {}: {}", class_name(p.cls), p.level, std::strerror(err)));
}

ScopedIoPriority::ScopedIoPriority(IoPriority priority) {
  auto before = thread_io_priority();
  if (!before) {
    log::warn(before.error().message);
    return;
  }
  before_ = *before;
  if (auto ok = set_thread_io_priority(priority); !ok) {
    log::warn(ok.error().message);
    return;
  }
  active_ = true;
}

ScopedIoPriority::~ScopedIoPriority() {
  if (active_) (void)set_thread_io_priority(before_);
}

}  // namespace tensorinit
