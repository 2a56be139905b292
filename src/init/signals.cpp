#include "init/signals.hpp"

#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cstring>
#include <fmt/format.h>

#include "util/log.hpp"

namespace tensorinit::init {
namespace {

void set_disposition(int sig, void (*handler)(int)) noexcept {
  struct sigaction action{};
  action.sa_handler = handler;
  sigaction(sig, &action, nullptr);
}

// SIGTSTP's handler in a vfork child that took the terminal, until execve resets it to SIG_DFL.
void drop_signal(int) {}

bool ignored_now(int sig) noexcept {
  struct sigaction current;
  return sigaction(sig, nullptr, &current) == 0 && current.sa_handler == SIG_IGN;
}

// Every descriptor from 3 up becomes close-on-exec, then the kept ones lose the flag.
// close_range needs Linux 5.11; older kernels walk the table.
void mark_cloexec_from_3(std::span<const int> keep) noexcept {
  if (::syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
    const long limit = ::sysconf(_SC_OPEN_MAX);
    for (int fd = 3; fd < limit && fd < (1 << 20); ++fd) {
      int flags = ::fcntl(fd, F_GETFD);
      if (flags >= 0) ::fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
    }
  }
  for (int fd : keep) {
    int flags = ::fcntl(fd, F_GETFD);
    if (flags >= 0) ::fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC);
  }
}

}  // namespace

InheritedSignals block_all_signals(Dispositions who_changes) {
  sigset_t all, mask;
  sigfillset(&all);
  sigprocmask(SIG_SETMASK, &all, &mask);
  return blocked_already(mask, who_changes);
}

InheritedSignals blocked_already(const sigset_t& mask, Dispositions who_changes) {
  InheritedSignals inherited;
  inherited.mask = mask;
  sigemptyset(&inherited.recorded);
  sigemptyset(&inherited.ignored);
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    if (who_changes == Dispositions::init_only && sig != SIGCHLD) continue;
    const bool ignored = ignored_now(sig);
    // The init changes SIGCHLD only when it was ignored (take_ignored_signals_back).
    if (who_changes == Dispositions::init_only && !ignored) continue;
    sigaddset(&inherited.recorded, sig);  // refused for the C library's own two (32, 33): never set
    if (ignored) sigaddset(&inherited.ignored, sig);
  }
  return inherited;
}

bool inherited_ignored(const InheritedSignals& inherited, int sig) noexcept {
  if (sigismember(&inherited.recorded, sig) == 1) return sigismember(&inherited.ignored, sig) == 1;
  return ignored_now(sig);
}

void take_ignored_signals_back(const InheritedSignals& inherited) {
  // Recorded whenever it was ignored (under either Dispositions): no read here.
  if (sigismember(&inherited.recorded, SIGCHLD) == 1 && sigismember(&inherited.ignored, SIGCHLD) == 1)
    set_disposition(SIGCHLD, SIG_DFL);
}

void restore_inherited_signals(const InheritedSignals& inherited) noexcept {
  // Every recorded disposition back to default (or SIG_IGN as inherited): libraries linked into
  // tensorinit may have installed handlers.
  for (int sig = 1; sig < NSIG; ++sig)
    if (sigismember(&inherited.recorded, sig) == 1)
      set_disposition(sig, sigismember(&inherited.ignored, sig) == 1 ? SIG_IGN : SIG_DFL);
  sigprocmask(SIG_SETMASK, &inherited.mask, nullptr);
}

void prepare_exec(const InheritedSignals& inherited, std::span<const int> keep, bool drop_terminal_stop) noexcept {
  for (int sig = 1; sig < NSIG; ++sig)
    if (sigismember(&inherited.recorded, sig) == 1)
      set_disposition(sig, sigismember(&inherited.ignored, sig) == 1 ? SIG_IGN : SIG_DFL);
  if (drop_terminal_stop && !inherited_ignored(inherited, SIGTSTP)) set_disposition(SIGTSTP, drop_signal);
  mark_cloexec_from_3(keep);
  sigprocmask(SIG_SETMASK, &inherited.mask, nullptr);
}

bool is_stop_signal(int sig) noexcept {
  return sig == SIGTERM || sig == SIGINT || sig == SIGHUP || sig == SIGQUIT;
}

bool default_is_ignore(int sig) noexcept {
  return sig == SIGCHLD || sig == SIGCONT || sig == SIGURG || sig == SIGWINCH;
}

PendingSignals take_pending_signals(const InheritedSignals& inherited) {
  PendingSignals pending;
  sigset_t wanted;
  sigfillset(&wanted);
  for (int sig = 1; sig < NSIG; ++sig)
    if (sigismember(&inherited.mask, sig) == 1) sigdelset(&wanted, sig);
  const timespec now{0, 0};
  for (;;) {
    const int sig = ::sigtimedwait(&wanted, nullptr, &now);
    if (sig < 0) {
      if (errno == EINTR) continue;
      break;  // EAGAIN: nothing left
    }
    // Ignored, or nothing by default (CHLD, WINCH...): neither stops nor deserves a log line.
    if (default_is_ignore(sig) || inherited_ignored(inherited, sig)) continue;
    if (is_stop_signal(sig) && pending.stop == 0) {
      pending.stop = sig;
    } else if (!is_stop_signal(sig)) {
      pending.discarded.push_back(sig);
    }
  }
  return pending;
}

void warn_dropped(int sig) {
  log::warn(fmt::format("signal {} ({}) arrived before the server started: not passed on", sig, strsignal(sig)));
}

}  // namespace tensorinit::init
