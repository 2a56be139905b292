#include "util/args.hpp"

#include <algorithm>
#include <fmt/format.h>

#include "util/redact.hpp"

namespace tensorinit {

// Options end at "--": what follows is the server's command line (run) or positionals.
std::vector<std::string>::iterator Args::options_end() { return std::find(words_.begin(), words_.end(), "--"); }

bool Args::flag(std::string_view name) {
  const auto end = options_end();
  auto it = std::find(words_.begin(), end, name);
  if (it == end) return false;
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
  const auto end = options_end();
  for (auto it = words_.begin(); it != end; ++it)
    if (it->size() > 1 && (*it)[0] == '-')
      return fail(Code::usage, fmt::format("{}: unknown option '{}' (see --help)", verb_, printable(*it)));
  if (end != words_.end()) words_.erase(end);  // "--" ends the options: "inspect -- -odd-name"
  if (words_.size() < min) return fail(Code::usage, fmt::format("{}: missing argument (see --help)", verb_));
  if (words_.size() > max) return fail(Code::usage, fmt::format("{}: unexpected argument '{}'", verb_, printable(words_[max])));
  return words_;
}

}  // namespace tensorinit
