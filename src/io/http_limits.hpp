// How slow one HTTP request may be before it is abandoned (and retried, io/http_retry.hpp), from
// the source's stall_timeout and the request's size; no manifest key of its own:
//   - stall: no byte at all (head or body) for stall_timeout;
//   - minimum rate: from the first byte on, every stall_timeout window must bring at least
//     kWindowBytes of the body, or all of the body still missing when the window began (a body
//     that trickles one byte every 0.3 s resets the stall clock forever, but fails this);
//   - deadline: the whole request within 2 x stall_timeout (for the answer to begin, and slack)
//     plus its size at the minimum rate. It bounds what the other two cannot: a head that never
//     ends, a body whose size was not known.
// At the default stall_timeout of 10 s: 25.6 KiB/s, and 11 minutes for a 16 MiB range.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <limits>

namespace tensorinit::io {

struct TransferLimits {
  static constexpr uint64_t kWindowBytes = 256 << 10;

  std::chrono::milliseconds stall_timeout{10000};
  uint64_t expected_bytes = 0;  // the body the request asks for; 0: not known (then kWindowBytes)
  std::chrono::milliseconds deadline{std::chrono::hours(24)};
  static constexpr std::chrono::milliseconds kLongestDeadline = std::chrono::hours(24 * 7);

  // `bytes`: the request's size (a range's length; a whole object's size limit). Thread-safe (pure).
  static TransferLimits for_request(std::chrono::milliseconds stall_timeout, uint64_t bytes) {
    TransferLimits limits;
    limits.stall_timeout = stall_timeout;
    limits.expected_bytes = bytes;
    const uint64_t stall_ms = static_cast<uint64_t>(std::max<int64_t>(stall_timeout.count(), 1));
    // Clamped so that neither the product nor the deadline overflows (a week at most).
    const uint64_t counted = std::min<uint64_t>(bytes, std::numeric_limits<uint64_t>::max() / stall_ms / 4);
    const uint64_t ms = std::min<uint64_t>(2 * stall_ms + counted * stall_ms / kWindowBytes,
                                           static_cast<uint64_t>(kLongestDeadline.count()));
    limits.deadline = std::chrono::milliseconds(static_cast<int64_t>(ms));
    return limits;
  }

  // What the window that began with `missing` body bytes still to come must bring.
  uint64_t window_needs(uint64_t missing) const { return std::min(kWindowBytes, missing); }
};

}  // namespace tensorinit::io
