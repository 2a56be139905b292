// A whole small remote object (a model's index.json) in memory, over the same client, retries
// and redirect rules as ranged reads.
#pragma once

#include <cstdint>
#include <stop_token>
#include <string>

#include "io/http_client.hpp"
#include "io/http_request.hpp"

namespace tensorinit::io {

struct FetchedObject {
  std::string body;
  std::string etag;  // as sent; empty: none
};

// GETs `request` whole. Larger than `max_bytes` (by Content-Length or by what arrives): Code::bad_data.
// Errors as HttpSource::open's (404: no_source; 401, 403: denied; unavailable after the retries).
// Each attempt starts over (no resume: the object is small). Thread-safe.
Result<FetchedObject> fetch_all(HttpClient& client, const HttpRequest& request, const RequestSigner* signer,
                                const RemoteOptions& options, uint64_t max_bytes, std::stop_token stop = {});

}  // namespace tensorinit::io
