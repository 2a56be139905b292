#include "init/signals.hpp"

#include <stdio.h>
#include <string.h>

namespace tensorinit::init {

InheritedSignals block_all_signals() {
  InheritedSignals inherited;
  sigset_t all;
  sigfillset(&all);
  sigprocmask(SIG_SETMASK, &all, &inherited.mask);
  // A signal ignored at exec would be discarded before the init could forward it (and an
  // ignored SIGCHLD would make the kernel reap for us, hiding the child's status). The init
  // takes them back to default -- harmless while blocked -- and the child gets SIG_IGN back.
  // ~64 rt_sigaction calls: a few microseconds.
  sigemptyset(&inherited.ignored);
  for (int sig = 1; sig < NSIG; ++sig) {
    struct sigaction current;
    if (sigaction(sig, nullptr, &current) != 0 || current.sa_handler != SIG_IGN) continue;
    sigaddset(&inherited.ignored, sig);
    struct sigaction dfl{};
    dfl.sa_handler = SIG_DFL;
    sigaction(sig, &dfl, nullptr);
  }
  return inherited;
}

void restore_inherited_signals(const InheritedSignals& inherited) noexcept {
  // Every disposition back to default (or SIG_IGN as inherited): libraries linked into the init
  // may have installed handlers, and handlers would be reset by exec anyway, ignores would not.
  struct sigaction dfl{};
  dfl.sa_handler = SIG_DFL;
  struct sigaction ign{};
  ign.sa_handler = SIG_IGN;
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    sigaction(sig, sigismember(&inherited.ignored, sig) == 1 ? &ign : &dfl, nullptr);
  }
  sigprocmask(SIG_SETMASK, &inherited.mask, nullptr);
}

bool default_is_ignore(int sig) noexcept {
  return sig == SIGCHLD || sig == SIGCONT || sig == SIGURG || sig == SIGWINCH;
}

const char* signal_name(int sig) noexcept {
  thread_local char buffer[32];
  if (sig >= SIGRTMIN && sig <= SIGRTMAX) {
    snprintf(buffer, sizeof buffer, "SIGRTMIN+%d", sig - SIGRTMIN);
    return buffer;
  }
  const char* abbrev = sigabbrev_np(sig);
  if (abbrev == nullptr) {
    snprintf(buffer, sizeof buffer, "signal %d", sig);
    return buffer;
  }
  snprintf(buffer, sizeof buffer, "SIG%s", abbrev);
  return buffer;
}

}  // namespace tensorinit::init
