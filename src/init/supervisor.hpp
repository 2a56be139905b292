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
  std::string table_path;        // the tensor table, sent over the socket once ready
};

struct Options {
  std::vector<std::string> command;                          // argv of the server
  std::vector<std::pair<std::string, std::string>> env;      // added to the child's environment
  std::chrono::milliseconds grace{10000};
  bool group = false;                                        // forward to the child's process group
  const SignalHandoff* handoff = nullptr;                     // null: plain init (or exec done already)
};

// Runs the init loop until the main child is gone and the others are drained; returns the exit
// code tensorinit should exit with (child's code, 128+N, 126/127, or the staging error's code).
// Reaps every child of the process (waitpid(-1)): nothing else in the process may wait for
// children while it runs. Call from the main thread with all signals blocked.
int supervise(const Options& options, const InheritedSignals& inherited);

}  // namespace tensorinit::init
