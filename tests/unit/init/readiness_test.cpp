// init/readiness: when may the ready signal be sent? Each child sets itself up, says so on a pipe,
// then waits to be killed: the verdicts depend on its state only, never on timing.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>

#include "init/readiness.hpp"

using tensorinit::init::signal_readiness;
using tensorinit::init::SignalReadiness;

namespace {

void on_usr1(int) {}

// Forks a child that runs `setup`, reports on a pipe, then waits in `wait` until killed.
SignalReadiness verdict_of(const std::function<void()>& setup, const std::function<void()>& wait) {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::close(fds[0]);
    setup();
    (void)!::write(fds[1], "x", 1);
    for (;;) wait();
  }
  ::close(fds[1]);
  char c = 0;
  REQUIRE(::read(fds[0], &c, 1) == 1);
  ::close(fds[0]);
  SignalReadiness verdict = signal_readiness(child, SIGUSR1);
  // A child in sigwait shows its wait channel only once it sleeps there: wait for that.
  for (int i = 0; i < 2000 && verdict == SignalReadiness::not_ready; ++i) {
    ::usleep(1000);
    verdict = signal_readiness(child, SIGUSR1);
  }
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  return verdict;
}

void block_usr1() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  sigprocmask(SIG_BLOCK, &set, nullptr);
}

void sleep_forever() { ::pause(); }

}  // namespace

TEST_CASE("readiness: a handler is ready") {
  CHECK(verdict_of([] { ::signal(SIGUSR1, on_usr1); }, sleep_forever) == SignalReadiness::ready);
}

TEST_CASE("readiness: ignored is not ready (the signal would be lost; a handler may come later)") {
  CHECK(verdict_of([] { ::signal(SIGUSR1, SIG_IGN); }, sleep_forever) == SignalReadiness::not_ready);
}

TEST_CASE("readiness: blocked alone is not ready (vfork and pthread_create block for a while)") {
  // The old rule counted a signal blocked on 3 polls in a row as ready: a Python server looping on
  // subprocess.run was killed by SIGUSR1. Blocked with nothing waiting for it never counts.
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    block_usr1();
    (void)!::write(fds[1], "x", 1);
    for (;;) ::pause();
  }
  char c = 0;
  REQUIRE(::read(fds[0], &c, 1) == 1);
  for (int i = 0; i < 20; ++i) CHECK(signal_readiness(child, SIGUSR1) == SignalReadiness::not_ready);
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  ::close(fds[0]);
  ::close(fds[1]);
}

TEST_CASE("readiness: blocked and read through a signalfd counts") {
  CHECK(verdict_of(
            [] {
              block_usr1();
              sigset_t set;
              sigemptyset(&set);
              sigaddset(&set, SIGUSR1);
              if (::signalfd(-1, &set, 0) < 0) ::_exit(3);
            },
            sleep_forever) == SignalReadiness::waits_for_it);
}

TEST_CASE("readiness: a thread waiting in sigwait counts") {
  CHECK(verdict_of(block_usr1,
                   [] {
                     sigset_t set;
                     sigemptyset(&set);
                     sigaddset(&set, SIGUSR1);
                     int sig = 0;
                     sigwait(&set, &sig);
                   }) == SignalReadiness::waits_for_it);
}
