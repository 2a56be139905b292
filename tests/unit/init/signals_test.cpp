// The signal state helpers, each checked in a forked child (they change process-wide state).
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>

#include "init/signals.hpp"

using namespace tensorinit::init;

namespace {

// Runs `body` in a forked child that starts with default dispositions, an empty mask, and HUP
// ignored (as under nohup); the child's exit code is body's result (0: all good).
int in_child(const std::function<int()>& body) {
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    for (int sig = 1; sig < SIGRTMIN; ++sig)
      if (sig != SIGKILL && sig != SIGSTOP) ::signal(sig, SIG_DFL);
    ::signal(SIGHUP, SIG_IGN);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    ::_exit(body());
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void (*handler_of(int sig))(int) {
  struct sigaction current{};
  sigaction(sig, nullptr, &current);
  return current.sa_handler;
}

bool blocked(int sig) {
  sigset_t now;
  sigprocmask(SIG_SETMASK, nullptr, &now);
  return sigismember(&now, sig) == 1;
}

}  // namespace

TEST_CASE("block_all_signals blocks everything and leaves inherited ignores in place") {
  CHECK(in_child([] {
          ::signal(SIGCHLD, SIG_IGN);
          auto inherited = block_all_signals();
          if (!blocked(SIGTERM) || !blocked(SIGUSR1)) return 1;
          if (sigismember(&inherited.ignored, SIGHUP) != 1 || sigismember(&inherited.ignored, SIGTERM) == 1) return 2;
          if (handler_of(SIGHUP) != SIG_IGN) return 3;  // nohup still holds for a verb that does not supervise
          take_ignored_signals_back(inherited);
          if (handler_of(SIGCHLD) != SIG_DFL) return 4;  // the supervisor's side: the kernel must not reap for it
          if (handler_of(SIGHUP) != SIG_IGN) return 5;   // tini's rule: blocked, HUP still reaches the signalfd
          ::kill(::getpid(), SIGHUP);
          sigset_t pending;
          sigpending(&pending);
          return sigismember(&pending, SIGHUP) == 1 ? 0 : 6;  // queued, not discarded as ignored
        }) == 0);
}

TEST_CASE("block_all_signals(init_only) reads SIGCHLD alone, records it only if ignored; the others are read when asked") {
  CHECK(in_child([] {
          ::signal(SIGUSR2, SIG_IGN);
          auto inherited = block_all_signals(Dispositions::init_only);
          if (!blocked(SIGTERM) || !blocked(SIGUSR1)) return 1;
          for (int sig = 1; sig < NSIG; ++sig)  // SIGCHLD is default here: nothing to set before an exec
            if (sigismember(&inherited.recorded, sig) == 1) return 2;
          if (!inherited_ignored(inherited, SIGHUP) || !inherited_ignored(inherited, SIGUSR2)) return 3;
          if (inherited_ignored(inherited, SIGTERM) || inherited_ignored(inherited, SIGCHLD)) return 4;
          take_ignored_signals_back(inherited);
          return handler_of(SIGCHLD) == SIG_DFL && handler_of(SIGHUP) == SIG_IGN ? 0 : 5;
        }) == 0);
  CHECK(in_child([] {  // an inherited ignore of SIGCHLD: taken back, and ignored again for the server
          ::signal(SIGCHLD, SIG_IGN);
          auto inherited = block_all_signals(Dispositions::init_only);
          for (int sig = 1; sig < NSIG; ++sig)
            if ((sigismember(&inherited.recorded, sig) == 1) != (sig == SIGCHLD)) return 1;
          if (!inherited_ignored(inherited, SIGCHLD)) return 1;
          take_ignored_signals_back(inherited);
          if (handler_of(SIGCHLD) != SIG_DFL) return 2;
          prepare_exec(inherited, {});
          return handler_of(SIGCHLD) == SIG_IGN && handler_of(SIGHUP) == SIG_IGN && !blocked(SIGTERM) ? 0 : 3;
        }) == 0);
}

TEST_CASE("restore_inherited_signals: nohup survives (a HUP during synth is ignored), the mask is back") {
  // Regression: cli restored the mask but block_all_signals had reset SIG_IGN, so `trap '' HUP;
  // tensorinit synth` died of the first HUP.
  CHECK(in_child([] {
          auto inherited = block_all_signals();
          restore_inherited_signals(inherited);
          if (blocked(SIGTERM)) return 1;
          ::kill(::getpid(), SIGHUP);  // would end the child with 129
          return handler_of(SIGHUP) == SIG_IGN ? 0 : 2;
        }) == 0);
}

static void a_library_handler(int) {}

TEST_CASE("prepare_exec: tini's rule (inherited SIG_IGN kept, the rest SIG_DFL), no handler of ours left, the mask back") {
  CHECK(in_child([] {
          auto inherited = block_all_signals();
          // What linked libraries may do after the start: a handler, an ignore of their own.
          ::signal(SIGUSR1, a_library_handler);
          ::signal(SIGPIPE, SIG_IGN);
          ::signal(SIGHUP, SIG_DFL);
          prepare_exec(inherited, {});
          if (blocked(SIGUSR1)) return 1;
          if (handler_of(SIGHUP) != SIG_IGN) return 2;
          for (int sig = 1; sig < SIGRTMIN; ++sig)
            if (sig != SIGHUP && sig != SIGKILL && sig != SIGSTOP && handler_of(sig) != SIG_DFL) return 3;
          return 0;
        }) == 0);
  CHECK(in_child([] {  // a signal in the window acts as in the server a microsecond later
          auto inherited = block_all_signals();
          prepare_exec(inherited, {});
          ::kill(::getpid(), SIGTERM);
          return 0;
        }) == 128 + SIGTERM);
}

TEST_CASE("prepare_exec for a vfork child that took the terminal: Ctrl-Z in the window is dropped") {
  CHECK(in_child([] {
          auto inherited = block_all_signals(Dispositions::init_only);
          prepare_exec(inherited, {}, true);
          if (handler_of(SIGTSTP) == SIG_DFL || handler_of(SIGTSTP) == SIG_IGN) return 1;
          ::kill(::getpid(), SIGTSTP);  // would stop the child (and the waiting test) otherwise
          return handler_of(SIGINT) == SIG_DFL ? 0 : 2;
        }) == 0);
  CHECK(in_child([] {  // inherited SIG_IGN stays
          ::signal(SIGTSTP, SIG_IGN);
          auto inherited = block_all_signals(Dispositions::init_only);
          prepare_exec(inherited, {}, true);
          return handler_of(SIGTSTP) == SIG_IGN ? 0 : 1;
        }) == 0);
}

TEST_CASE("take_pending_signals: the first stop signal, the others dropped, inherited-blocked ones kept") {
  CHECK(in_child([] {
          sigset_t usr2;
          sigemptyset(&usr2);
          sigaddset(&usr2, SIGUSR2);
          sigprocmask(SIG_SETMASK, &usr2, nullptr);
          auto inherited = block_all_signals();
          for (int sig : {SIGUSR1, SIGUSR2, SIGHUP, SIGQUIT, SIGTERM, SIGPIPE, SIGCHLD}) ::kill(::getpid(), sig);
          auto pending = take_pending_signals(inherited);
          // HUP is ignored (nohup): not a stop. QUIT (3) is the lowest-numbered stop signal.
          if (pending.stop != SIGQUIT) return 1;
          if (pending.discarded != std::vector<int>{SIGUSR1, SIGPIPE}) return 2;
          sigset_t still;
          sigpending(&still);
          if (sigismember(&still, SIGUSR2) != 1 || sigismember(&still, SIGTERM) == 1) return 3;
          return 0;
        }) == 0);
}
