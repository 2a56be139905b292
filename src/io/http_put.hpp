// An upload: PUT of a file's bytes to one URL (an S3 object through a SigV4 signer, or a plain
// http(s) URL), retried as ranged reads are (io/http_retry.hpp): each attempt re-sends the whole
// file and is signed afresh. An S3 PUT is atomic: readers see the old object or the new one.
#pragma once

#include <cstdint>
#include <stop_token>
#include <string>

#include "io/http_request.hpp"
#include "util/error.hpp"

namespace tensorinit::io {

// Sends `size` bytes of `fd` from offset 0 (pread: the descriptor's offset is not used) to
// request.url with request.method (PUT) and headers. request.payload_sha256, when set, is signed
// as the body's hash (S3 checks it). 2xx: done. Errors as Retrier::after gives them (404:
// no_source; 401/403: denied; else unavailable after options.retries), named by the redacted URL
// only. `stop` ends waits and the transfer (Code::stopped). Loads libcurl on first use.
// Thread-safe (one easy handle per call).
Status http_put(HttpRequest request, int fd, uint64_t size, const RequestSigner* signer,
                const RemoteOptions& options, std::stop_token stop);

}  // namespace tensorinit::io
