#include "app/phases.hpp"

#include <time.h>
#include <unistd.h>

#include <algorithm>

#include <fmt/format.h>

#include "util/proc_stat.hpp"

namespace tensorinit::app {

double seconds_since_process_start() {
  const auto stat = read_proc_stat(0);  // field 22, starttime: clock ticks after boot
  const unsigned long long start_ticks = stat ? stat->start_time : 0;
  timespec now{};
  const long hz = ::sysconf(_SC_CLK_TCK);
  if (start_ticks == 0 || hz <= 0 || ::clock_gettime(CLOCK_BOOTTIME, &now) != 0) return 0;
  const double seconds = static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) / 1e9 -
                         static_cast<double>(start_ticks) / static_cast<double>(hz);
  return seconds > 0 ? seconds : 0;
}

Phases::Phases() : startup_(seconds_since_process_start()) {}

void Phases::add(const std::string& name, double seconds) {
  std::lock_guard lock(*mutex_);
  for (auto& [n, s] : phases_)
    if (n == name) {
      s += seconds;
      return;
    }
  phases_.emplace_back(name, seconds);
}

void Phases::add_beside(const std::string& name, double seconds) {
  add(name, seconds);
  std::lock_guard lock(*mutex_);
  if (std::find(beside_.begin(), beside_.end(), name) == beside_.end()) beside_.push_back(name);
}

std::vector<std::string> Phases::beside() const {
  std::lock_guard lock(*mutex_);
  return beside_;
}

double Phases::seconds(const std::string& name) const {
  std::lock_guard lock(*mutex_);
  for (const auto& [n, s] : phases_)
    if (n == name) return s;
  return 0;
}

std::vector<std::pair<std::string, double>> Phases::all() const {
  std::lock_guard lock(*mutex_);
  return phases_;
}

std::string Phases::summary() const {
  std::string out;
  for (const auto& [n, s] : all()) out += fmt::format("{}{} {:.3f}s", out.empty() ? "" : ", ", n, s);
  return out;
}

double Phases::mark(const std::string& event) {
  const double at = total();
  std::lock_guard lock(*mutex_);
  timeline_.emplace_back(event, at);
  return at;
}

std::vector<std::pair<std::string, double>> Phases::timeline() const {
  std::lock_guard lock(*mutex_);
  return timeline_;
}

double Phases::last(const std::string& event) const {
  std::lock_guard lock(*mutex_);
  for (auto it = timeline_.rbegin(); it != timeline_.rend(); ++it)
    if (it->first == event) return it->second;
  return -1;
}

}  // namespace tensorinit::app
