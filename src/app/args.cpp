#include "app/args.hpp"

#include <algorithm>
#include <fmt/format.h>

namespace tensorinit::app {

bool Args::flag(std::string_view name) {
  auto it = std::find(words_.begin(), words_.end(), name);
  if (it == words_.end()) return false;
  words_.erase(it);
  return true;
}

Result<std::optional<std::string>> Args::option(std::string_view name) {
  for (auto it = words_.begin(); it != words_.end(); ++it) {
    if (*it == "--") break;
    if (*it == name) {
      if (it + 1 == words_.end() || *(it + 1) == "--")
        return fail(Code::usage, fmt::format("{}: {} needs a value", verb_, name));
      std::string value = *(it + 1);
      words_.erase(it, it + 2);
      return std::optional(value);
    }
    if (it->size() > name.size() && it->starts_with(name) && (*it)[name.size()] == '=') {
      std::string value = it->substr(name.size() + 1);
      words_.erase(it);
      return std::optional(value);
    }
  }
  return std::optional<std::string>();
}

std::vector<std::string> Args::after_double_dash() {
  auto it = std::find(words_.begin(), words_.end(), "--");
  if (it == words_.end()) return {};
  std::vector<std::string> rest(it + 1, words_.end());
  words_.erase(it, words_.end());
  return rest;
}

Result<std::vector<std::string>> Args::positionals(size_t min, size_t max) {
  for (const auto& w : words_)
    if (w.size() > 1 && w[0] == '-') return fail(Code::usage, fmt::format("{}: unknown option '{}' (see --help)", verb_, w));
  if (words_.size() < min) return fail(Code::usage, fmt::format("{}: missing argument (see --help)", verb_));
  if (words_.size() > max) return fail(Code::usage, fmt::format("{}: unexpected argument '{}'", verb_, words_[max]));
  return words_;
}

}  // namespace tensorinit::app
