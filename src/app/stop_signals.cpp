#include "app/stop_signals.hpp"

#include <signal.h>
#include <time.h>

#include "init/signals.hpp"

namespace tensorinit::app {

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
  waiter_ = std::jthread([this, set](std::stop_token stop) {
    const timespec tick{0, 100'000'000};  // 100 ms: how quickly the waiter notices its own end
    while (!stop.stop_requested()) {
      int s = ::sigtimedwait(&set, nullptr, &tick);
      if (s > 0) {
        signal_.store(s);
        source_.request_stop();
        return;
      }
    }
  });
}

StopOnSignal::~StopOnSignal() {
  waiter_.request_stop();
  waiter_.join();
}

}  // namespace tensorinit::app
