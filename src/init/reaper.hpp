// Zombies and leftovers: reaping every child, and signalling whatever is still running at
// shutdown (helpers, orphans that were re-parented to us, escaped process groups).
#pragma once

#include <sys/types.h>

#include <functional>

namespace tensorinit::init {

// Makes this process the reaper of its orphaned descendants when it is not PID 1 (as PID 1 it
// is already). Returns false when the kernel refused.
bool become_subreaper();

// Reaps every child that has exited (waitpid(-1, WNOHANG) until nothing is left, so coalesced
// SIGCHLDs never strand a zombie), calling on_change(pid, status) for each, and also for each
// child that stopped (WIFSTOPPED: not reaped). Returns false when the process has no children
// left at all (ECHILD).
bool reap_exited(const std::function<void(pid_t, int)>& on_change);

// Sends `sig` to every other process we are responsible for: as PID 1 everything in the PID
// namespace (kill(-1)); otherwise each descendant found under /proc, through a pidfd checked
// against the process's start time, so a recycled pid is never hit. Returns how many were
// signalled (for PID 1: 1 if any, 0 if none).
int signal_descendants(int sig);

}  // namespace tensorinit::init
