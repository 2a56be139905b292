// A verb's result, or what it threw, as the process exit code, with its error logged as the one
// `tensorinit: error:` line. Both programs' main functions end here (app/cli.cpp and the first
// stage's plain init, first_stage/main.cpp), so messages and codes cannot drift apart.
#pragma once

#include <exception>
#include <fmt/format.h>
#include <new>

#include "util/error.hpp"
#include "util/log.hpp"

namespace tensorinit {

// `verb` returns Result<int>; it may throw Failure (its code), bad_alloc (70, "out of memory")
// or another std::exception (70, "internal error: ..."). Thread-safe if `verb` is.
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
  } catch (const std::bad_alloc&) {
    log::error("out of memory");
    return static_cast<int>(Code::internal);
  } catch (const std::exception& e) {
    log::error(fmt::format("internal error: {}", e.what()));
    return static_cast<int>(Code::internal);
  }
}

}  // namespace tensorinit
