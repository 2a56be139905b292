// /proc/PID/stat, the fields tensorinit reads: the parent (ancestry of a `ready` on the socket,
// descendants to signal at shutdown) and the start time (a recycled pid; the process's own
// start-up time in the report). One parser: the command name may hold spaces and parentheses, so
// the fields are counted from its last ')'.
#pragma once

#include <sys/types.h>

#include <optional>

namespace tensorinit {

struct ProcStat {
  char state = 0;                     // field 3: R, S, Z, ...
  pid_t ppid = 0;                     // field 4
  unsigned long long start_time = 0;  // field 22: clock ticks after boot
};

// The stat of `pid`, or of this process when `pid` is 0 (/proc/self: right even when /proc is
// another PID namespace's). nullopt when it cannot be read (gone, no /proc). Thread-safe.
std::optional<ProcStat> read_proc_stat(pid_t pid);

// Whether /proc was mounted for this PID namespace (/proc/self names our pid). `unshare -p -f`
// without --mount-proc, or a sandbox that binds the host's /proc, leaves another namespace's,
// where our pids name other processes. Thread-safe.
bool proc_is_ours();

// The number /proc knows `pid` (a pid of this namespace) by: `pid` itself when /proc is ours,
// else the "Pid:" of a pidfd's fdinfo, which the kernel gives in the namespace of the /proc it is
// read through (Linux 5.3+). nullopt when there is no /proc, the process is gone, or that /proc
// cannot see it. Thread-safe.
std::optional<pid_t> proc_pid(pid_t pid);

}  // namespace tensorinit
