// The seam between the HTTP transport (io/http_source) and request signing (io/sigv4): a request
// is a method, a URL already percent-encoded as it goes on the wire, and headers. A signer adds
// headers; the transport sends exactly what it is given.
#pragma once

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "util/error.hpp"

namespace tensorinit::io {

struct HttpRequest {
  std::string method = "GET";
  std::string url;  // scheme://host[:port]/path?query, encoded exactly as sent
  std::vector<std::pair<std::string, std::string>> headers;  // besides Host, which comes from url
  std::string payload_sha256;  // hex SHA-256 of the body a signer signs; empty: no body (GET, HEAD)
};

// Adds authentication headers to a request (S3 SigV4; none for plain HTTP). Called once per
// attempt, right before sending, so that time-stamped signatures stay fresh across retries.
// Thread-safe: one signer serves every reader thread.
class RequestSigner {
 public:
  virtual ~RequestSigner() = default;
  virtual Status sign(HttpRequest& request) const = 0;
};

// How remote reads behave under faults; from the source's manifest entry.
struct RemoteOptions {
  unsigned retries = 6;                                // attempts after the first, per request
  std::chrono::milliseconds backoff_base{200};         // exponential with full jitter
  std::chrono::milliseconds backoff_max{10000};
  std::chrono::milliseconds stall_timeout{10000};      // no body byte for this long: abandon, retry
  std::chrono::milliseconds connect_timeout{10000};
  std::string ca_file;                                 // empty: the system's CA store
  unsigned connections = 0;                            // 0 = auto (scaled to usable cores)
};

}  // namespace tensorinit::io
