// Exec'ing the server: the argv/environment arrays both ways of starting it build, and exec in
// place (handoff exec when tensorinit is not PID 1: someone else is the init). spawn() and
// exec_in_place() end in the same prepare_exec (init/signals.hpp).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "init/signals.hpp"
#include "util/error.hpp"

namespace tensorinit::init {

using EnvOverrides = std::vector<std::pair<std::string, std::string>>;

// argv and envp as execvpe wants them, with their storage. Built before fork/exec so that the
// child allocates nothing. Not thread-safe against setenv (reads environ).
class ExecImage {
 public:
  // Our environment, with each variable of `overrides` set (replacing an inherited one).
  ExecImage(std::vector<std::string> argv, const EnvOverrides& overrides);
  char* const* argv() { return argv_pointers_.data(); }
  char* const* envp() { return env_pointers_.data(); }

 private:
  std::vector<std::string> args_;
  std::vector<std::string> env_;
  std::vector<char*> argv_pointers_;
  std::vector<char*> env_pointers_;
};

struct ExecRequest {
  std::vector<std::string> argv;  // argv[0] is searched in PATH; must not be empty
  EnvOverrides env;               // set (replacing) in the server's environment
  std::vector<int> keep_fds;      // stay open in the server (e.g. the model-name lock); all other
                                  // descriptors from 3 up are closed by the exec
};

// Replaces tensorinit with the server. Call on the main thread with every signal blocked and no
// other thread that matters (exec ends them). Signals that arrived while blocked are taken first
// (except those the inherited mask blocks: they stay pending for the server):
//  - a stop signal (TERM, INT, HUP, QUIT; not inherited SIG_IGN): no exec, the error carries
//    128+N -- the server is not started on a container that is being stopped;
//  - any other (USR1, PIPE, ALRM...): discarded with a warning line, then exec.
// The server gets the inherited mask and dispositions (prepare_exec). Returns only when it did
// not exec: 128+N as above, or 127 (not found) / 126 (not executable) naming the command, with
// every signal blocked again.
Error exec_in_place(const ExecRequest& request, const InheritedSignals& inherited);

// The code tensorinit exits with for a wait status: the exit code, or 128+N for signal N.
int exit_code_of(int wait_status);

// The error for an execvpe that failed with `err`: 127 not found, else 126.
Error exec_error(const std::string& command, int err);

}  // namespace tensorinit::init
