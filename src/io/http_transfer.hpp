// One transfer on one easy handle, inside io/http_client: the callbacks that read the response
// head and route the body (to the target for a 2xx, to a small error buffer otherwise), and the
// loop that drives the transfer and abandons it when it is too slow (io/http_limits.hpp) or
// stopped. Not a public interface.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>

#include "io/curl_library.hpp"
#include "io/http_client.hpp"
#include "io/http_limits.hpp"

namespace tensorinit::io {

// What one transfer's callbacks share. Lives on the stack of HttpClient::perform_once.
struct Transfer {
  BodyTarget& target;
  std::stop_token stop;
  TransferLimits limits;
  ResponseHead head;
  bool accepted = false;  // a 2xx head the target took: its body goes to the target
  std::optional<Error> refused;
  std::string error_body;  // the start of a non-2xx body
  uint64_t error_bytes = 0;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last_byte = started;  // of head or body
  // The minimum-rate window, open from the first byte on: when it began, and the body bytes
  // received by then and by now (2xx or not).
  bool window_open = false;
  std::chrono::steady_clock::time_point window_start;
  uint64_t window_body_start = 0;
  uint64_t body_bytes = 0;
  bool stalled = false;
  std::string too_slow;  // when stalled by the rate or the deadline: why, in words
  bool stopped = false;
};

// CURLOPT_HEADERFUNCTION and CURLOPT_WRITEFUNCTION; their user data is a Transfer.
size_t on_header(char* data, size_t size, size_t count, void* user);
size_t on_body(char* data, size_t size, size_t count, void* user);

// Runs one transfer to its end on the calling thread: done (libcurl's result), too slow (t.limits,
// checked at least every 100 ms: t.stalled, with t.too_slow saying why unless it was a plain stall)
// or stopped (t.stop; it wakes the wait at once).
// `failure` gets libcurl's multi-interface error, if that is what ended it.
CURLcode run_transfer(const CurlApi& api, CURL* easy, CURLM* multi, Transfer& t, std::string& failure);

// The <Code> of an XML error document (S3, GCS's XML API), when it looks like one.
std::string xml_error_code(std::string_view body);

std::string ascii_lower(std::string_view s);

}  // namespace tensorinit::io
