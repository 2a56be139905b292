// init/readiness: when may the ready signal be sent? Each child sets itself up, says so on a pipe,
// then waits to be killed: the verdicts depend on its state only, never on timing.
#include <doctest/doctest.h>
#include <pthread.h>
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

// Forks a child that runs `setup`, reports on a pipe, then waits in `wait` until killed. The
// verdict of a full look once the child settled; with `scan` quick, then one quick look.
SignalReadiness verdict_of(const std::function<void()>& setup, const std::function<void()>& wait,
                           tensorinit::init::ReadinessScan scan = tensorinit::init::ReadinessScan::full) {
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
  if (scan == tensorinit::init::ReadinessScan::quick) verdict = signal_readiness(child, SIGUSR1, scan);
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

void signalfd_usr1() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  if (::signalfd(-1, &set, 0) < 0) ::_exit(3);
}

void sigwait_usr1() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  int sig = 0;
  sigwait(&set, &sig);
}

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
  CHECK(verdict_of([] { block_usr1(); signalfd_usr1(); }, sleep_forever) == SignalReadiness::waits_for_it);
}

TEST_CASE("readiness: a thread waiting in sigwait counts") {
  CHECK(verdict_of(block_usr1, sigwait_usr1) == SignalReadiness::waits_for_it);
}

TEST_CASE("readiness: the poll looks every 10 ms for 5 s (in full for the first), then every 100 ms; in full once a second past the first") {
  using tensorinit::init::next_ready_poll;
  using tensorinit::init::ReadinessScan;
  using std::chrono::milliseconds;
  unsigned full = 0;
  milliseconds waited{0};
  for (unsigned polls = 1; polls < 100; ++polls) {
    CHECK(next_ready_poll(polls).after == milliseconds(10));
    CHECK(next_ready_poll(polls).scan == ReadinessScan::full);
  }
  for (unsigned polls = 100; polls < 500; ++polls) {
    CHECK(next_ready_poll(polls).after == milliseconds(10));
    CHECK((next_ready_poll(polls).scan == ReadinessScan::full) == (polls % 10 == 0));
  }
  for (unsigned polls = 500; polls < 1100; ++polls) {
    const auto next = next_ready_poll(polls);
    CHECK(next.after == milliseconds(100));
    full += next.scan == ReadinessScan::full;
    waited += next.after;
  }
  CHECK(full == 60);  // one a second over the next 60 s
  CHECK(waited == milliseconds(60000));
}

TEST_CASE("readiness: a quick look sees a handler and a main thread in sigwait, not a signalfd") {
  using tensorinit::init::ReadinessScan;
  CHECK(verdict_of([] { ::signal(SIGUSR1, on_usr1); }, sleep_forever, ReadinessScan::quick) == SignalReadiness::ready);
  CHECK(verdict_of(block_usr1, sigwait_usr1, ReadinessScan::quick) == SignalReadiness::waits_for_it);
  CHECK(verdict_of([] { block_usr1(); signalfd_usr1(); }, sleep_forever, ReadinessScan::quick) == SignalReadiness::not_ready);
}

TEST_CASE("readiness: a thread in sigwait for another signal does not count while others take this one") {
  // The shutdown-thread pattern: SIGTERM blocked, a thread in sigwait for it; SIGUSR1 neither
  // caught nor blocked in the main thread yet. Sending it then killed the server.
  CHECK(verdict_of(
            [] {
              sigset_t set;
              sigemptyset(&set);
              sigaddset(&set, SIGTERM);
              sigprocmask(SIG_BLOCK, &set, nullptr);
              pthread_t thread;
              if (::pthread_create(&thread, nullptr, [](void*) -> void* {
                    sigset_t term;
                    sigemptyset(&term);
                    sigaddset(&term, SIGTERM);
                    int sig = 0;
                    sigwait(&term, &sig);
                    return nullptr;
                  }, nullptr) != 0)
                ::_exit(3);
            },
            sleep_forever) == SignalReadiness::not_ready);
}
