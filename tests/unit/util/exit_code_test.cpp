#include "util/exit_code.hpp"

#include <doctest/doctest.h>
#include <stdexcept>
#include <system_error>

namespace tensorinit {

TEST_CASE("exit_code: what was thrown gives code 70 and one line that says what ran out") {
  CHECK(thrown_message(std::bad_alloc()) == "out of memory");
  const std::system_error no_thread(std::make_error_code(std::errc::resource_unavailable_try_again), "thread");
  CHECK(thrown_message(no_thread).starts_with("no thread to be had ("));
  CHECK(thrown_message(no_thread).find("pids.max") != std::string::npos);
  const std::system_error other(std::make_error_code(std::errc::invalid_argument), "mutex");
  CHECK(thrown_message(other).starts_with("internal error: mutex"));
  CHECK(thrown_message(std::runtime_error("odd")) == "internal error: odd");
  CHECK(exit_code_of([&]() -> Result<int> { throw no_thread; }) == 70);
}

}  // namespace tensorinit
