// A small argument scanner: subcommands take a handful of flags, so no library is needed. In util
// because the first stage (src/first_stage) parses `run` with it too.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/error.hpp"

namespace tensorinit {

// Options and flags are looked for before "--" only. Not thread-safe.
class Args {
 public:
  Args(std::string verb, std::vector<std::string> words) : verb_(std::move(verb)), words_(std::move(words)) {}

  // True if `flag` is present (removes it).
  bool flag(std::string_view name);
  // The value after `name` (or `name=value`); Code::usage if the value is missing.
  Result<std::optional<std::string>> option(std::string_view name);
  // Everything after `--` (removes it and the marker).
  std::vector<std::string> after_double_dash();
  // What is left: positionals. Anything starting with '-' left over before "--" is an unknown
  // option; after "--", words are positionals whatever they look like.
  Result<std::vector<std::string>> positionals(size_t min, size_t max);

 private:
  std::vector<std::string>::iterator options_end();

  std::string verb_;
  std::vector<std::string> words_;
};

}  // namespace tensorinit
