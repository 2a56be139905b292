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
// Dispositions follow tini's rule: whatever was inherited SIG_IGN is SIG_IGN in the server,
// everything else SIG_DFL (execve resets caught handlers, keeps SIG_IGN). tensorinit itself
// changes one disposition only, SIGCHLD's (take_ignored_signals_back); every other signal is
// blocked and read from a signalfd or sigtimedwait, which a blocked SIG_IGN reaches too (the
// kernel never discards a blocked signal as ignored).
struct InheritedSignals {
  sigset_t mask{};      // the blocked set at exec
  sigset_t recorded{};  // signals whose inherited disposition was read at start (into `ignored`):
                        // those this process may change. The others are untouched: their
                        // disposition now is the inherited one (inherited_ignored reads it).
  sigset_t ignored{};   // among `recorded`, those that were SIG_IGN at exec
};

// Who may change signal dispositions in this process after block_all_signals.
enum class Dispositions {
  // Linked libraries may install handlers or ignores at any time (tensorinit-full: curl,
  // OpenSSL, the CUDA runtime): every disposition is read at start (64 rt_sigaction calls) and
  // every one is set again before an exec.
  anyone,
  // Only init/ (the static first stage, whose plain init links nothing that installs
  // handlers): SIGCHLD alone is read at start, and recorded (then set again before an exec)
  // only if it was inherited SIG_IGN. Measured: 122 of the plain init's 201 system calls were
  // the other way's; this way makes 1, or 3 under an inherited ignore of SIGCHLD.
  init_only,
};

// Blocks every catchable signal and returns what was there before; dispositions are left as they
// are (an inherited SIG_IGN stays, so a verb that ends up not supervising behaves as it was asked
// to). Call first in main: from then on a signal waits (pending) for whoever handles it, however
// early it arrives. Not thread-safe (call before any thread exists); threads created afterwards
// inherit the full mask.
InheritedSignals block_all_signals(Dispositions who_changes = Dispositions::anyone);

// The same for a process whose every signal is blocked already (the first stage's entry point
// did it): `mask` is the one it found. Same thread-safety.
InheritedSignals blocked_already(const sigset_t& mask, Dispositions who_changes);

// Whether `sig` was SIG_IGN when tensorinit started: the recorded bit, or (for a signal not
// recorded, hence untouched) its disposition now. Async-signal-safe.
bool inherited_ignored(const InheritedSignals& inherited, int sig) noexcept;

// The supervisor's side: an inherited SIG_IGN of SIGCHLD back to SIG_DFL, so that the kernel
// does not reap (and hide) the server's status. The other inherited ignores stay: blocked, they
// still reach the signalfd and are forwarded, and the server inherits them through vfork and
// execve untouched. Main thread, before the signalfd is read.
void take_ignored_signals_back(const InheritedSignals& inherited);

// Puts back the dispositions and mask tensorinit was started with: for verbs that do not
// supervise (plan, inspect, synth, pack), where Ctrl-C should simply stop them and `trap '' HUP`
// (nohup) keeps them alive on a hangup. Main thread, before any thread exists.
void restore_inherited_signals(const InheritedSignals& inherited) noexcept;

// The last step before execve (in place, or in a vfork child): async-signal-safe.
//  - every recorded signal (those this process may have changed): SIG_IGN if inherited so, else
//    SIG_DFL; the others are untouched, hence as inherited. So no handler of this process is
//    left to run in a vfork child that shares its memory, and the server starts with tini's
//    rule. A signal between the mask restore and execve acts as it would a microsecond later,
//    in the server before it installed its handlers (USR1 ends it, 128+10);
//  - with `drop_terminal_stop` (a vfork child that took the terminal): SIGTSTP, unless
//    inherited SIG_IGN, gets a handler that does nothing until execve resets it: Ctrl-Z in that
//    window would stop the vfork child, and with it the init waiting for its exec;
//  - every descriptor from 3 up close-on-exec, except `keep` (which lose FD_CLOEXEC);
//  - the inherited mask.
void prepare_exec(const InheritedSignals& inherited, std::span<const int> keep,
                  bool drop_terminal_stop = false) noexcept;

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
