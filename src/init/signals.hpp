// Signal plumbing shared by the init's pieces: the mask, the child's restore, names for logs.
#pragma once

#include <signal.h>

#include "init/supervisor.hpp"

namespace tensorinit::init {

// Puts back the dispositions and mask tensorinit was started with. Runs in the forked child
// between fork and exec, so it is async-signal-safe (sigaction/sigprocmask only).
void restore_inherited_signals(const InheritedSignals& inherited) noexcept;

// Signals whose default action is to do nothing (CHLD, CONT, URG, WINCH): safe to send to a
// process that has not installed a handler yet.
bool default_is_ignore(int sig) noexcept;

// "SIGTERM", "SIGRTMIN+3", or "signal 99".
const char* signal_name(int sig) noexcept;

}  // namespace tensorinit::init
