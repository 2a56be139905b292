// Named, timed phases and a timeline of events: every run reports where its seconds went, from
// tensorinit's own process start (so a slow dynamic loader or image mount shows).
// Thread-safety: every method may be called from any thread (signal mode stages on a worker
// while the supervisor's loop marks the server's events).
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace tensorinit::app {

class Phases {
 public:
  using Clock = std::chrono::steady_clock;

  Phases();

  // Runs `fn`, recording its wall time under `name` (added to any earlier time of that name),
  // and the event `name` on the timeline when it ends.
  template <class Fn>
  auto time(const std::string& name, Fn&& fn) {
    const auto start = Clock::now();
    struct Record {
      Phases* self; const std::string* name; Clock::time_point start;
      ~Record() {
        self->add(*name, std::chrono::duration<double>(Clock::now() - start).count());
        self->mark(*name);
      }
    } record{this, &name, start};
    return fn();
  }

  void add(const std::string& name, double seconds);
  // A phase that ran beside the others on a thread of its own (CUDA start-up, beside plan and
  // index): recorded as add() does, and named by beside(), so the report says it is not summed.
  void add_beside(const std::string& name, double seconds);
  std::vector<std::string> beside() const;  // in the order first added
  double seconds(const std::string& name) const;  // 0 when never timed
  // Seconds from tensorinit's process start (/proc/self/stat starttime, 10 ms resolution) to now.
  double total() const { return startup_ + std::chrono::duration<double>(Clock::now() - started_).count(); }
  // Process start to this object's construction (exec, dynamic loader, main): the first phase.
  double startup() const { return startup_; }
  std::vector<std::pair<std::string, double>> all() const;
  std::string summary() const;  // "plan 0.01s, index 0.02s, stage 8.90s"

  // Records `event` at total() on the timeline; returns that time.
  double mark(const std::string& event);
  // The events in order, each with its seconds from the process start.
  std::vector<std::pair<std::string, double>> timeline() const;
  // The last time `event` was marked; negative when never.
  double last(const std::string& event) const;

 private:
  Clock::time_point started_ = Clock::now();
  double startup_ = 0;
  std::unique_ptr<std::mutex> mutex_ = std::make_unique<std::mutex>();
  std::vector<std::pair<std::string, double>> phases_;
  std::vector<std::pair<std::string, double>> timeline_;
  std::vector<std::string> beside_;
};

// Seconds from this process's start (its starttime in /proc/self/stat against CLOCK_BOOTTIME) to
// now; 0 when /proc is missing. Thread-safe.
double seconds_since_process_start();

}  // namespace tensorinit::app
