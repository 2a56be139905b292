// The limits of one HTTP request, derived from stall_timeout and its size: the rule that
// docs/trust.md ("Remote reads, shared caches, a deterministic suite") documents, in numbers.
#include "io/http_limits.hpp"

#include <doctest/doctest.h>

using namespace tensorinit;
using namespace std::chrono_literals;

TEST_CASE("io: a request's deadline is 2 x stall_timeout plus its bytes at 256 KiB per stall_timeout") {
  const auto chunk = io::TransferLimits::for_request(10'000ms, 16ull << 20);
  CHECK(chunk.stall_timeout == 10'000ms);
  CHECK(chunk.expected_bytes == 16ull << 20);
  CHECK(chunk.deadline == 20'000ms + 640'000ms);  // 11 minutes for 16 MiB at the default 10 s
  CHECK(io::TransferLimits::for_request(2'000ms, 1).deadline == 4'000ms);  // a probe: the answer's time
  CHECK(io::TransferLimits::for_request(2'000ms, 256 << 10).deadline == 6'000ms);
  CHECK(io::TransferLimits::for_request(0ms, 1 << 20).deadline == 6ms);  // never zero
  const auto huge = io::TransferLimits::for_request(3'600'000ms, UINT64_MAX);  // no overflow
  CHECK(huge.deadline > 3'600'000ms);
}

TEST_CASE("io: each window must bring 256 KiB or all the body still missing") {
  const auto limits = io::TransferLimits::for_request(2'000ms, 1 << 20);
  CHECK(limits.window_needs(1 << 20) == 256 << 10);
  CHECK(limits.window_needs(1000) == 1000);
  CHECK(limits.window_needs(0) == 0);
}
