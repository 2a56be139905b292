// Named, timed phases: every run reports where its seconds went.
#pragma once

#include <chrono>
#include <string>
#include <utility>
#include <vector>

namespace tensorinit::app {

class Phases {
 public:
  using Clock = std::chrono::steady_clock;

  // Runs `fn`, recording its wall time under `name` (added to any earlier time of that name).
  template <class Fn>
  auto time(const std::string& name, Fn&& fn) {
    const auto start = Clock::now();
    struct Record {
      Phases* self; const std::string* name; Clock::time_point start;
      ~Record() { self->add(*name, std::chrono::duration<double>(Clock::now() - start).count()); }
    } record{this, &name, start};
    return fn();
  }

  void add(const std::string& name, double seconds);
  double seconds(const std::string& name) const;  // 0 when never timed
  double total() const { return std::chrono::duration<double>(Clock::now() - started_).count(); }
  const std::vector<std::pair<std::string, double>>& all() const { return phases_; }
  std::string summary() const;  // "plan 0.01s, index 0.02s, stage 8.90s"

 private:
  Clock::time_point started_ = Clock::now();
  std::vector<std::pair<std::string, double>> phases_;
};

}  // namespace tensorinit::app
