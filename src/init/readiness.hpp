// Whether a started server can take a signal yet (the ready signal of signal handoff).
#pragma once

#include <sys/types.h>

#include <chrono>

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
// sigtimedwait (its wait channel) while every other thread blocks it (a thread in sigwait for
// SIGTERM alone says nothing of SIGUSR1), or an open signalfd whose mask holds it (its fdinfo). Blocked
// alone is not enough: glibc's pthread_create and CPython's subprocess (vfork) block every signal
// for a while (seen here: a Python loop of subprocess.run was killed by SIGUSR1 sent in that
// window, even after 12 agreeing polls), and the default action of SIGUSR1 kills.

// How far one look goes. quick: the server's SigCgt and its main thread's wait channel, a few
// small reads whatever the server's size (a main thread in sigwait goes on to the full look).
// full: also every thread's wait channel and mask (stopping at the first that has it
// unblocked) and, when the
// signal is blocked, every descriptor's fdinfo: its cost grows with the server's threads
// (measured: a Python server with 100 threads polled in full every 10 ms cost the init 14.5% of a
// core for as long as the server ran, when it never caught the signal: a socket-only server, or
// vLLM's SIGWINCH).
enum class ReadinessScan { quick, full };

// One verdict from /proc. Thread-safe.
SignalReadiness signal_readiness(pid_t pid, int sig, ReadinessScan scan = ReadinessScan::full);

// When to look again after `polls` looks (from 1) found the server not ready, and how far: every
// 10 ms in full for the first second, every 10 ms quick (full every 100 ms) to the fifth second
// (a server about to catch it gets it at once), then every 100 ms quick with a full look every
// second, for as long as the server runs without catching it (measured with 100 threads: 2-3
// ticks of the init's CPU in 8 s, against 120 polled in full every 10 ms).
struct ReadyPoll {
  std::chrono::milliseconds after;
  ReadinessScan scan;
};
ReadyPoll next_ready_poll(unsigned polls);

}  // namespace tensorinit::init
