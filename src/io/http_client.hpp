// One HTTP(S) exchange at a time per caller, over a pool of libcurl easy handles shared by every
// file of a model. A handle is checked out per request and returned, so each reader thread keeps
// reusing a kept-alive connection. Redirects are followed here, not by libcurl, so that
// credentials never go to another origin. No retries at this level (io/http_retry.hpp).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <stop_token>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "io/http_limits.hpp"
#include "io/http_request.hpp"
#include "util/error.hpp"

namespace tensorinit::io {

struct CurlApi;
using Headers = std::vector<std::pair<std::string, std::string>>;

// The parts of a response's head that the transport acts on. Values as sent, trimmed.
struct ResponseHead {
  long status = 0;  // 0: no response
  std::string etag;
  std::string last_modified;
  std::string content_range;
  std::string retry_after;
  std::optional<uint64_t> content_length;
};

// Where the body of a 2xx response goes. Called on the thread that calls HttpClient::send.
class BodyTarget {
 public:
  virtual ~BodyTarget() = default;
  // The head of a 2xx response is in. An error refuses the body: nothing is written and the
  // exchange ends with that error (e.g. a 200 where a range was asked, a changed ETag).
  virtual Status accept(const ResponseHead& head) = 0;
  // The next piece of the body. An error ends the exchange (e.g. more bytes than asked for).
  virtual Status write(std::span<const std::byte> piece) = 0;
};

// What one send() came to: the final response (after redirects) or why there was none.
struct Exchange {
  ResponseHead head;
  int curl_code = 0;            // CURLcode; 0 when the transfer completed
  std::string curl_error;       // libcurl's description, with URLs' queries and header values removed
  std::optional<Error> refused; // the target's (or the redirect check's, or the signer's) error
  bool stalled = false;         // too slow (io/http_limits.hpp): abandoned
  std::string too_slow;         // why, when it was the minimum rate or the deadline (empty: a stall)
  bool stopped = false;         // the stop token fired during the transfer
  std::string error_code;       // <Code> of an XML error body (S3, GCS), e.g. "SlowDown"
  std::string redirect_url;     // where a 3xx pointed (absolute), when one was not followed

  bool completed() const { return curl_code == 0 && !refused && !stalled && !stopped; }
};

// Connection-level settings of every handle (from RemoteOptions: ca_file, connect_timeout).
class HttpClient {
 public:
  // Loads libcurl (io/curl_library.hpp) on first use: Code::unavailable if it cannot.
  static Result<std::shared_ptr<HttpClient>> create(const RemoteOptions& options);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends `request` plus `transport` headers (Range, If-Match: they go to every hop) and waits
  // for the answer. Redirects (301, 302, 303, 307, 308; at most kMaxRedirects) are followed:
  // within the request's origin (scheme, host, port) the request's own headers go along and
  // `signer` (may be null) signs each hop; to another origin only `transport` headers go, unsigned,
  // and https to http is refused. A transfer slower than `limits` allow (checked at least every
  // 100 ms; each hop gets them afresh), or whose `stop` fires (at once), is abandoned. Thread-safe.
  Exchange send(const HttpRequest& request, const Headers& transport, const RequestSigner* signer,
                BodyTarget& target, const TransferLimits& limits, std::stop_token stop);

  static constexpr int kMaxRedirects = 5;

  // Requests sent and connections opened since creation (CURLINFO_NUM_CONNECTS): keep-alive
  // shows as connections well below requests. Thread-safe.
  struct Stats {
    uint64_t requests = 0;
    uint64_t connections = 0;
  };
  Stats stats() const { return {requests_.load(), connections_.load()}; }

 private:
  struct Handle;  // an easy handle and the multi handle that drives it (RAII)
  class Lease;
  HttpClient(const CurlApi& api, RemoteOptions options);
  Result<std::unique_ptr<Handle>> checkout();  // configured once, then reused with its connections
  void give_back(std::unique_ptr<Handle> handle);
  Exchange perform_once(const HttpRequest& request, BodyTarget& target, const TransferLimits& limits,
                        std::stop_token stop);

  const CurlApi& api_;
  const RemoteOptions options_;
  std::mutex mutex_;
  std::vector<std::unique_ptr<Handle>> idle_;  // not in use
  std::atomic<uint64_t> requests_{0};
  std::atomic<uint64_t> connections_{0};
};

// scheme://host:port, lower-cased, default port filled in: what "the same origin" compares.
std::string url_origin(std::string_view url);

}  // namespace tensorinit::io
