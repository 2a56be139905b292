// The signal state tensorinit inherits, holds and hands on. main blocks every signal first thing
// and keeps what it found (InheritedSignals); the supervisor takes ignored signals back so it can
// forward them; the verbs that do not supervise restore everything; and the exec of a server
// (spawned or in place) goes through prepare_exec, which gives the server the inherited state
// without the signals that arrived for tensorinit while they were blocked.
#pragma once

#include <signal.h>

#include <span>
#include <vector>

namespace tensorinit::init {

// The signal mask and dispositions tensorinit was started with, captured first thing in main.
struct InheritedSignals {
  sigset_t mask;     // the blocked set at exec
  sigset_t ignored;  // signals that were SIG_IGN at exec (they stay SIG_IGN until supervise()
                     // takes them back, and are SIG_IGN again in the server)
};

// Blocks every catchable signal and returns what was there before; dispositions are left as they
// are (an inherited SIG_IGN stays, so a verb that ends up not supervising behaves as it was asked
// to). Call first in main: from then on a signal waits (pending) for whoever handles it, however
// early it arrives. Not thread-safe (call before any thread exists); threads created afterwards
// inherit the full mask.
InheritedSignals block_all_signals();

// The supervisor's side: every inherited SIG_IGN back to SIG_DFL, so that an ignored SIGCHLD
// cannot make the kernel reap (and hide) the server's status, and ignored signals can be
// forwarded. Harmless while everything is blocked. Main thread, before the signalfd is read.
void take_ignored_signals_back(const InheritedSignals& inherited);

// Puts back the dispositions and mask tensorinit was started with: for verbs that do not
// supervise (plan, inspect, synth, pack), where Ctrl-C should simply stop them and `trap '' HUP`
// (nohup) keeps them alive on a hangup. Main thread, before any thread exists.
void restore_inherited_signals(const InheritedSignals& inherited) noexcept;

// The last step before execve (in place, or in a vfork child): async-signal-safe.
//  - inherited SIG_IGN: SIG_IGN again; TERM, INT, HUP, QUIT, the faults (SEGV, BUS, ILL, FPE,
//    TRAP, SYS, ABRT) and the signals whose default does nothing: SIG_DFL;
//  - every other signal gets a handler that does nothing: one that arrives between the mask
//    restore and execve is dropped, instead of killing the server before it has run (execve
//    resets handlers to SIG_DFL, so the server starts with the inherited dispositions);
//  - every descriptor from 3 up close-on-exec, except `keep` (which lose FD_CLOEXEC);
//  - the inherited mask.
void prepare_exec(const InheritedSignals& inherited, std::span<const int> keep) noexcept;

// TERM, INT, HUP, QUIT: before a server exists they stop tensorinit (exit 128+N, no server);
// once it exists they are forwarded (TERM also starts the grace).
bool is_stop_signal(int sig) noexcept;

// Signals whose default action is to do nothing (CHLD, CONT, URG, WINCH): safe to send to a
// process that has not installed a handler yet.
bool default_is_ignore(int sig) noexcept;

// What was pending for this thread or the process, consumed (sigtimedwait), except signals the
// inherited mask blocks: those stay pending for the server, as they would without tensorinit.
// Call with every signal blocked.
struct PendingSignals {
  int stop = 0;                // the first stop signal that was not inherited SIG_IGN, or 0
  std::vector<int> discarded;  // the others, lowest number first (inherited SIG_IGN and
                               // default-ignore ones left out)
};
PendingSignals take_pending_signals(const InheritedSignals& inherited);

// "tensorinit: warning: signal 10 (User defined signal 1) arrived before the server started:
// not passed on". Names come from the C library (handoff.signal names: manifest/signals.hpp).
void warn_dropped(int sig);

}  // namespace tensorinit::init
