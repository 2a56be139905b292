// tensorinit as PID 1: start the server, forward signals, reap zombies, drain helpers, propagate
// the exit code -- and, in signal-handoff mode, stage the weights while the server starts.
// Behaviour, exit codes and the socket protocol are documented in docs/init.md.
#pragma once

#include <chrono>
#include <functional>
#include <stop_token>
#include <string>
#include <utility>
#include <vector>

#include "init/ready_probe.hpp"
#include "init/signals.hpp"
#include "util/error.hpp"

namespace tensorinit::init {

struct SignalHandoff {
  // Stages the weights and writes the tensor table; runs on a worker thread. Must return promptly
  // (within a second) once `stop` is requested, having removed what it created.
  std::function<Status(std::stop_token stop)> stage;
  bool start_early = true;       // spawn the server before staging (its imports overlap the load)
  int ready_signal = SIGUSR1;    // sent to the server when the weights are ready (early start only)
  std::string socket_path;       // $TENSORINIT_SOCKET: clients block here until ready, get the table
  // The tensor table's text, sent over the socket once ready (called on the loop's thread after
  // stage returned): the text as written, not read back from a path a server may have replaced.
  std::function<std::string()> table;
};

// How the server is known ready (handoff.ready). Ready counts once the server answered and, in
// signal mode, the weights are staged (a server that answers before it has its weights is ready
// when they are).
struct ReadyWatch {
  enum class By { none, probe, socket } by = By::none;
  ProbeTarget probe;                          // By::probe: http or tcp
  std::chrono::milliseconds timeout{600000};  // from each server start; then the start failed:
                                              // the server gets SIGTERM and the grace, exit 69
};

// Restarting the server when it exits (handoff.restart): the staged weights stay as they are.
struct RestartPolicy {
  enum class When { never, on_failure, always } when = When::never;
  unsigned max_restarts = 5;
  std::chrono::milliseconds first_delay{1000};  // doubles after each restart, up to max_delay
  std::chrono::milliseconds max_delay{30000};
};

// What the caller is told, on the loop's thread (the main thread), in this order for each server:
// spawned, ready (at most once), exited. Keep them short: the loop (signals, reaping) waits while
// they run; long work (saving a cache) belongs on a thread of its own. Each may be empty.
struct Events {
  std::function<void(pid_t pid, unsigned restart)> spawned;  // restart: 0 for the first start
  std::function<void()> ready;
  std::function<void(int code, bool restarting)> exited;     // code as tensorinit would exit with it
  // Before each restart, once the old server and its leftovers are gone: an error refuses the
  // restart (the weights are no longer what was staged) and tensorinit exits with its code.
  std::function<Status()> check_before_restart;
  // tensorinit failed the start itself (not ready in time, a restart refused): logged already;
  // tensorinit exits with its code once the server is stopped.
  std::function<void(const Error& error)> failed;
};

struct Options {
  std::vector<std::string> command;                          // argv of the server
  std::vector<std::pair<std::string, std::string>> env;      // added to the child's environment
  std::chrono::milliseconds grace{10000};
  bool group = false;                                        // forward to the child's process group
  const SignalHandoff* handoff = nullptr;                     // null: plain init (or exec done already)
  ReadyWatch ready;                                          // By::socket needs handoff's socket
  RestartPolicy restart;
  Events events;
};

// Runs the init loop until the main child is gone (and not restarted) and the others are drained;
// returns the exit code tensorinit should exit with (the last child's code, 128+N, 126/127, the
// staging error's code, 69 when the server was not ready in time, 128+N for a stop signal during
// a restart delay, or the code of check_before_restart's error).
// Reaps every child of the process (waitpid(-1)): nothing else in the process may wait for
// children while it runs. Call from the main thread with all signals blocked.
int supervise(const Options& options, const InheritedSignals& inherited);

}  // namespace tensorinit::init
