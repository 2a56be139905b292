#include "app/stop_signals.hpp"

#include <pthread.h>
#include <signal.h>
#include <time.h>

#include "init/signals.hpp"

namespace tensorinit::app {
namespace {

const int kWake = SIGRTMIN;  // blocked since main's first instruction, like every signal

}  // namespace

StopOnSignal::StopOnSignal() {
  // Those of TERM, INT, HUP, QUIT that tensorinit was not started with ignored (main leaves an
  // inherited SIG_IGN in place; a blocked signal is queued even so, so it must be left out here).
  sigset_t set;
  sigemptyset(&set);
  for (int s = 1; s < NSIG; ++s) {
    struct sigaction current{};
    if (init::is_stop_signal(s) && sigaction(s, nullptr, &current) == 0 && current.sa_handler != SIG_IGN)
      sigaddset(&set, s);
  }
  // The destructor wakes the waiter with kWake sent to its thread alone (a signal sent to a thread
  // is never taken by another, and dies with it). A 100 ms timeout used to do it: 0.1 s of every
  // `load`, 80% of a small model's load time here.
  sigaddset(&set, kWake);
  // The waiter must hold kWake blocked from its first instruction (it inherits this thread's mask;
  // main blocked everything, but a test may not have).
  sigset_t wake, before;
  sigemptyset(&wake);
  sigaddset(&wake, kWake);
  ::pthread_sigmask(SIG_BLOCK, &wake, &before);
  waiter_ = std::jthread([this, set](std::stop_token stop) {
    const timespec tick{1, 0};  // only a backstop: the wake is the signal
    while (!stop.stop_requested()) {
      int s = ::sigtimedwait(&set, nullptr, &tick);
      if (s == kWake) continue;
      if (s > 0) {
        signal_.store(s);
        source_.request_stop();
        return;
      }
    }
  });
  ::pthread_sigmask(SIG_SETMASK, &before, nullptr);
}

int StopOnSignal::finish() {
  if (waiter_.joinable()) {
    waiter_.request_stop();
    ::pthread_kill(waiter_.native_handle(), kWake);
    waiter_.join();
  }
  return signal_.load();
}

StopOnSignal::~StopOnSignal() { finish(); }

}  // namespace tensorinit::app
