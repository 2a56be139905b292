// Whether a started server can take a signal yet (the ready signal of signal handoff).
#pragma once

#include <sys/types.h>

namespace tensorinit::init {

// Whether `pid` catches, ignores or blocks `sig` yet (SigCgt/SigIgn/SigBlk of /proc/PID/status).
// Sending the ready signal before the server has installed its handler would kill it (SIGUSR1's
// default action), so the init waits for this. Unknown (no /proc of ours): ready.
enum class SignalReadiness { ready, blocked_only, not_ready };

// A blocked signal is either a server that takes it with sigwait/signalfd (blocked for good) or
// glibc's pthread_create, which blocks every signal for an instant (seen here: a Python server
// starting threads was killed by SIGUSR1 sent in that window; a Python loop starting threads
// showed it blocked in 14% of 300 reads). Blocked counts only when 4 reads 1 ms apart agree, on
// this many polls in a row (10 ms apart): a chance of about 0.14^12 for such a loop.
constexpr int kBlockedPollsForReady = 3;

// One verdict (blocked_only only when kBlockedSamples reads 1 ms apart agree). Reads /proc;
// thread-safe.
SignalReadiness signal_readiness(pid_t pid, int sig);

}  // namespace tensorinit::init
