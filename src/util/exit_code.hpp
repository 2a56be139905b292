// A verb's result, or what it threw, as the process exit code, with its error logged as the one
// `tensorinit: error:` line. Both programs' main functions end here (app/cli.cpp and the first
// stage's plain init, first_stage/main.cpp), so messages and codes cannot drift apart.
#pragma once

#include <exception>
#include <fmt/format.h>
#include <new>
#include <string>
#include <system_error>

#include "util/error.hpp"
#include "util/log.hpp"

namespace tensorinit {

// What a caught exception says as the error line: bad_alloc "out of memory"; std::system_error
// EAGAIN (std::thread refused a thread: a container's process limit) names the limit; another
// "internal error: ...". Thread-safe.
inline std::string thrown_message(const std::exception& e) {
  if (dynamic_cast<const std::bad_alloc*>(&e)) return "out of memory";
  if (const auto* s = dynamic_cast<const std::system_error*>(&e);
      s && s->code() == std::errc::resource_unavailable_try_again)
    return fmt::format("no thread to be had ({}): the process limit (a pids cgroup's pids.max, ulimit -u) is reached, or no memory for its stack",
                       s->code().message());
  return fmt::format("internal error: {}", e.what());
}

// `verb` returns Result<int>; it may throw Failure (its code) or a std::exception (70, its error
// line thrown_message's). Thread-safe if `verb` is.
template <class Verb>
int exit_code_of(Verb&& verb) {
  try {
    const Result<int> code = verb();
    if (code) return *code;
    log::error(code.error().message);
    return code.error().exit_code();
  } catch (const Failure& f) {
    log::error(f.error.message);
    return f.error.exit_code();
  } catch (const std::exception& e) {
    log::error(thrown_message(e));
    return static_cast<int>(Code::internal);
  }
}

}  // namespace tensorinit
