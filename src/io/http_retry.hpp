// When a remote read tries again: which failures are worth another attempt, how long to wait
// first (exponential backoff with full jitter, at least what Retry-After asks), and the one-line
// error when they run out. Shared by ranged reads (io/http_source) and whole fetches.
#pragma once

#include <chrono>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>

#include "io/http_client.hpp"
#include "io/http_request.hpp"

namespace tensorinit::io {

// "HTTP 503 (SlowDown)", "Connection reset by peer (curl error 56)", "no data for 1000 ms": what
// went wrong in `ex`, for messages. Holds no query string, header value or signature.
std::string describe(const Exchange& ex, std::chrono::milliseconds stall_timeout);

// Retry-After as a wait: delta-seconds or an HTTP-date; nullopt when absent or unreadable.
std::optional<std::chrono::milliseconds> parse_retry_after(std::string_view value);

// The retry budget of one request (one ranged read, one fetch). Not thread-safe: one per call.
class Retrier {
 public:
  // `name`: the redacted URL; `what`: the request in words ("bytes 0-99"), for messages.
  Retrier(const RemoteOptions& options, std::stop_token stop, std::string name, std::string what)
      : options_(options), stop_(std::move(stop)), name_(std::move(name)), what_(std::move(what)) {}

  // After an exchange that did not deliver: the final error when it is not worth retrying
  // (404: no_source; 401, 403: denied; other 4xx, TLS or URL errors: unavailable; refused by the
  // target: its code), when the budget is spent (unavailable, with the last error), or when
  // stopped; otherwise waits the backoff (cut short by the stop token) and returns success.
  // Connection errors, timeouts, stalls, broken bodies (resumed by the caller), 408, 429 and 5xx
  // are retried; so is a 2xx that delivered nothing.
  Status after(const Exchange& ex);

  unsigned attempts() const { return attempts_; }
  Error error(Code code, const Exchange& ex) const;  // "<name>: <what>: <describe(ex)>"

 private:
  Status wait(const Exchange& ex, std::optional<std::chrono::milliseconds> at_least);

  const RemoteOptions& options_;
  std::stop_token stop_;
  std::string name_;
  std::string what_;
  unsigned attempts_ = 1;
};

}  // namespace tensorinit::io
