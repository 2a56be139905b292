// Hooks on the server's life in `tensorinit run` (signal mode), for features that act at those
// moments beside the weights (start-up caches: restore before the server starts, save once it is
// ready or when it exits). run_command.cpp calls every registered hook; each may be empty.
#pragma once

#include <sys/types.h>

#include <functional>

#include "util/error.hpp"

namespace tensorinit::app {

struct ServerHooks {
  // On the main thread, after the source is decided and before the first server starts (and
  // before staging begins). An error stops the start: tensorinit exits with its code.
  std::function<Status()> before_start;
  // On the supervisor's loop (the main thread), keep them short: signals and reaping wait while
  // they run; long work (archiving a cache) goes on a thread of its own.
  std::function<void(pid_t pid, unsigned restart)> spawned;   // each server start; restart 0 first
  std::function<void()> ready;                                // each time a server is ready (handoff.ready)
  std::function<void(int code, bool restarting)> exited;      // each server exit
  // On the main thread after the supervisor returned, before the staged weights are removed:
  // `exit_code` is what tensorinit exits with. Work here delays the exit (the grace is spent).
  std::function<void(int exit_code)> at_end;
};

}  // namespace tensorinit::app
