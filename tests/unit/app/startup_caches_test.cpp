#include "app/startup_caches.hpp"

#include <doctest/doctest.h>
#include <stdlib.h>

using namespace std::chrono_literals;

namespace tensorinit::app {

TEST_CASE("restore bound: 30 s + max_size at 8 MiB/s, or the test knob") {
  ::unsetenv("TENSORINIT_CACHE_RESTORE_BOUND");
  std::string rule;
  CHECK(restore_bound(0, rule) == 30s);
  CHECK(rule == "30 s + max_size at 8 MiB/s");
  const auto four_gib = restore_bound(4ull << 30, rule);  // the default max_size
  CHECK(four_gib > 541s);
  CHECK(four_gib < 543s);
  ::setenv("TENSORINIT_CACHE_RESTORE_BOUND", "250ms", 1);
  CHECK(restore_bound(4ull << 30, rule) == 250ms);
  CHECK(rule == "TENSORINIT_CACHE_RESTORE_BOUND");
  ::setenv("TENSORINIT_CACHE_RESTORE_BOUND", "soon", 1);  // malformed: the rule
  CHECK(restore_bound(0, rule) == 30s);
  ::unsetenv("TENSORINIT_CACHE_RESTORE_BOUND");
}

}  // namespace tensorinit::app
