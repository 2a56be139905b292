// Whether a started server can take a signal yet (the ready signal of signal handoff).
#pragma once

#include <sys/types.h>

namespace tensorinit::init {

// Whether `pid` catches, ignores or blocks `sig` yet (SigCgt/SigIgn/SigBlk of /proc/PID/status).
// Sending the ready signal before the server has installed its handler would kill it (SIGUSR1's
// default action), so the init waits for this. The server is found in /proc by the number that
// /proc knows it by (proc_pid: right on another namespace's /proc too). Unknown (no /proc, or one
// that cannot see the server): ready.
enum class SignalReadiness { ready, waits_for_it, not_ready };  // waits_for_it: sigwait or signalfd

// A blocked signal counts only when the server really waits for it: a thread in sigwait/
// sigtimedwait (its wait channel), or an open signalfd whose mask holds it (its fdinfo). Blocked
// alone is not enough: glibc's pthread_create and CPython's subprocess (vfork) block every signal
// for a while (seen here: a Python loop of subprocess.run was killed by SIGUSR1 sent in that
// window, even after 12 agreeing polls), and the default action of SIGUSR1 kills.

// One verdict from /proc. Thread-safe.
SignalReadiness signal_readiness(pid_t pid, int sig);

}  // namespace tensorinit::init
