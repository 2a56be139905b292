// Whether a started server can take a signal yet (the ready signal of signal handoff).
#pragma once

#include <sys/types.h>

namespace tensorinit::init {

// Whether `pid` catches or waits for `sig` yet (SigCgt/SigBlk of /proc/PID/status). Sending the
// ready signal before the server has installed its handler would kill it (SIGUSR1's default
// action) or be lost to it (ignored: inherited from tensorinit's parent; a signal whose default
// is to do nothing), and a server that asks for it later would wait forever; so the init waits
// for this, whatever the signal. The server is found in /proc by the number that
// /proc knows it by (proc_pid: right on another namespace's /proc too). No /proc at all: ready
// (nothing to wait on). /proc unreadable otherwise (EMFILE, a /proc that cannot see the server):
// not_ready, never a guess that could kill.
enum class SignalReadiness { ready, waits_for_it, not_ready };  // waits_for_it: sigwait or signalfd

// A blocked signal counts only when the server really waits for it: a thread in sigwait/
// sigtimedwait (its wait channel), or an open signalfd whose mask holds it (its fdinfo). Blocked
// alone is not enough: glibc's pthread_create and CPython's subprocess (vfork) block every signal
// for a while (seen here: a Python loop of subprocess.run was killed by SIGUSR1 sent in that
// window, even after 12 agreeing polls), and the default action of SIGUSR1 kills.

// One verdict from /proc. Thread-safe.
SignalReadiness signal_readiness(pid_t pid, int sig);

}  // namespace tensorinit::init
