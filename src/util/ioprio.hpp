// I/O priority of the calling thread (ioprio_set(2), which glibc does not wrap). The block layer
// schedules a request by the class of the thread that issued it: with mq-deadline (this machine's
// scheduler for /dev/vda) real-time before best-effort before idle, levels within a class
// ignored; bfq honours both; `none` and kyber ignore classes. Threads created afterwards inherit
// the priority. Thread-safe (each call affects the calling thread only).
#pragma once

#include "util/error.hpp"

namespace tensorinit {

enum class IoClass { none = 0, realtime = 1, best_effort = 2, idle = 3 };

struct IoPriority {
  IoClass cls = IoClass::none;  // none: the kernel derives it from the CPU nice value (best effort)
  int level = 4;                // 0 (highest) .. 7; ignored for idle
  bool operator==(const IoPriority&) const = default;
};

// The calling thread's priority now.
Result<IoPriority> thread_io_priority();
// Sets the calling thread's priority. Lowering needs no privilege; realtime needs CAP_SYS_ADMIN
// (Code::denied without it).
Status set_thread_io_priority(IoPriority priority);

// Lowers the calling thread to `priority` for the life of the object, then puts back what it had.
// For a staging thread whose readers must yield the disk to a starting server: the readers it
// creates meanwhile inherit the lowered priority. A failure to lower is only logged (staging goes
// on as before). Not thread-safe: one thread creates and destroys it.
class ScopedIoPriority {
 public:
  explicit ScopedIoPriority(IoPriority priority);
  ~ScopedIoPriority();
  ScopedIoPriority(const ScopedIoPriority&) = delete;
  ScopedIoPriority& operator=(const ScopedIoPriority&) = delete;
  bool active() const { return active_; }

 private:
  IoPriority before_{};
  bool active_ = false;
};

}  // namespace tensorinit
