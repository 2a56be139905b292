#include "app/stop_signals.hpp"

#include <signal.h>
#include <time.h>

namespace tensorinit::app {

StopOnSignal::StopOnSignal() {
  waiter_ = std::jthread([this](std::stop_token stop) {
    sigset_t set;
    sigemptyset(&set);
    for (int s : {SIGTERM, SIGINT, SIGHUP, SIGQUIT}) sigaddset(&set, s);
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
