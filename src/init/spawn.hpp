// Starting the main child: its own process group (the terminal's foreground group when the init
// had the terminal), the inherited signal state, no descriptors of ours beyond 0, 1, 2
// (prepare_exec, shared with exec_in_place).
#pragma once

#include <sys/types.h>

#include <string>
#include <utility>
#include <vector>

#include "init/exec.hpp"
#include "init/signals.hpp"
#include "util/error.hpp"

namespace tensorinit::init {

struct SpawnRequest {
  std::vector<std::string> argv;  // argv[0] is searched in PATH
  EnvOverrides env;               // set (replacing) in the child's env
  bool take_terminal = false;     // make the child's group the terminal's foreground group
};

// Whether stdin is a terminal whose foreground group is ours (then the child should take it;
// taking it from a background job would steal it from the shell).
bool owns_terminal();

// Forks and execs. Returns the child's pid once exec has succeeded; when exec fails the child is
// reaped here and the error carries 127 (not found) or 126 (not executable) and names the
// command. The parent learns the exec errno from the vfork child through its own memory.
Result<pid_t> spawn(const SpawnRequest& request, const InheritedSignals& inherited);

}  // namespace tensorinit::init
