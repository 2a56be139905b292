// I/O priorities: set, read back, inherited by threads created meanwhile, restored at scope end.
// Each case runs on a thread of its own, so the test runner's priority never changes.
#include "util/ioprio.hpp"

#include <doctest/doctest.h>

#include <thread>

using namespace tensorinit;

TEST_CASE("ioprio: idle for a scope, inherited by a thread made meanwhile, then restored") {
  std::thread([] {
    auto before = thread_io_priority();
    REQUIRE(before.has_value());
    IoPriority inherited{};
    {
      ScopedIoPriority idle(IoPriority{.cls = IoClass::idle});
      REQUIRE(idle.active());
      auto now = thread_io_priority();
      REQUIRE(now.has_value());
      CHECK(now->cls == IoClass::idle);
      std::thread([&] { inherited = thread_io_priority().value_or(IoPriority{}); }).join();
    }
    CHECK(inherited.cls == IoClass::idle);
    CHECK(thread_io_priority().value_or(IoPriority{}) == *before);
  }).join();
}

TEST_CASE("ioprio: best effort with a level reads back") {
  std::thread([] {
    REQUIRE(set_thread_io_priority({.cls = IoClass::best_effort, .level = 6}));
    auto now = thread_io_priority();
    REQUIRE(now.has_value());
    CHECK(now->cls == IoClass::best_effort);
    CHECK(now->level == 6);
  }).join();
}
