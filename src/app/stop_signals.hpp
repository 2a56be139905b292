// For verbs that stage without a supervisor (`load`, `run` in exec mode): signals stay blocked
// (main blocked them first thing) and one thread waits for TERM, INT, HUP or QUIT (those not
// ignored when tensorinit started: nohup keeps working), then asks staging to stop. Staging
// notices within one chunk read. Other signals stay pending: exec_in_place drops them.
#pragma once

#include <atomic>
#include <stop_token>
#include <thread>

namespace tensorinit::app {

class StopOnSignal {
 public:
  StopOnSignal();
  ~StopOnSignal();

  std::stop_token token() const { return source_.get_token(); }
  int signal() const { return signal_.load(); }  // 0 when none arrived (so far: the waiter may take one)
  // Stops and joins the waiter (idempotent; the destructor calls it), then returns the signal it
  // took, 0 when none: a signal that arrives later stays pending. Reading signal() and then
  // destroying lost a TERM that the waiter took in between (exit 0 with the server run, found by
  // test_attack5_term_sweep.sh).
  int finish();

 private:
  std::stop_source source_;
  std::atomic<int> signal_{0};
  std::jthread waiter_;
};

}  // namespace tensorinit::app
