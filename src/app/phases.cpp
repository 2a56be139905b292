#include "app/phases.hpp"

#include <fmt/format.h>

namespace tensorinit::app {

void Phases::add(const std::string& name, double seconds) {
  for (auto& [n, s] : phases_)
    if (n == name) {
      s += seconds;
      return;
    }
  phases_.emplace_back(name, seconds);
}

double Phases::seconds(const std::string& name) const {
  for (const auto& [n, s] : phases_)
    if (n == name) return s;
  return 0;
}

std::string Phases::summary() const {
  std::string out;
  for (const auto& [n, s] : phases_) out += fmt::format("{}{} {:.3f}s", out.empty() ? "" : ", ", n, s);
  return out;
}

}  // namespace tensorinit::app
