// One remote object (an HTTP(S) URL, an S3 object through a SigV4 signer) as a ByteSource:
// every read_at is a ranged GET for exactly that range, written straight into the caller's
// buffer. The object is pinned to the version seen when it was opened: a change mid-load is
// Code::bad_data, never a mix of two versions. Faults are retried (io/http_retry.hpp).
#pragma once

#include <memory>
#include <optional>
#include <stop_token>
#include <string>

#include "io/byte_source.hpp"
#include "io/http_client.hpp"
#include "io/http_request.hpp"

namespace tensorinit::io {

class HttpSource final : public ByteSource {
 public:
  // Learns the size and version (ETag, else Last-Modified) with a GET of `Range: bytes=0-0`
  // rather than a HEAD: a pre-signed URL is signed for one method (GET), and the answer also
  // proves that the server honours Range (206 with Content-Range), which parallel reads need.
  // A server that answers 200 instead is refused (Code::unavailable) without reading the body.
  // 404: Code::no_source; 401, 403: Code::denied; else after `options.retries`: Code::unavailable.
  // `signer` (may be null) signs every attempt of every request; `stop` ends waits and transfers
  // (Code::stopped). Every message names redact_url(base.url), never a query, header or signature.
  static Result<std::unique_ptr<HttpSource>> open(std::shared_ptr<HttpClient> client, HttpRequest base,
                                                  std::shared_ptr<const RequestSigner> signer,
                                                  RemoteOptions options, std::stop_token stop = {});

  uint64_t size() const override { return size_; }
  const std::string& name() const override { return name_; }  // the redacted URL

  // A ranged GET of exactly [offset, offset + out.size()), with If-Match: <etag()> (a strong ETag;
  // else If-Unmodified-Since: <last_modified()>). A body that breaks mid-way resumes from the
  // next byte (a new request, counted as a retry). 412, or an answer from another version (ETag,
  // Last-Modified, total size), is Code::bad_data. Without an ETag, a replacement within the
  // second of the pinned Last-Modified (HTTP dates have 1 s resolution) cannot be told apart;
  // S3, GCS, R2, MinIO and nginx all send ETags. Past the end: Code::bad_data. Thread-safe.
  Status read_at(uint64_t offset, std::span<std::byte> out) const override;

  const std::string& etag() const { return etag_; }  // as sent, quotes included; empty: none
  const std::string& last_modified() const { return last_modified_; }

 private:
  HttpSource() = default;
  Headers conditions() const;  // If-Match or If-Unmodified-Since

  std::shared_ptr<HttpClient> client_;
  HttpRequest base_;
  std::shared_ptr<const RequestSigner> signer_;
  RemoteOptions options_;
  std::stop_token stop_;
  std::string name_;
  uint64_t size_ = 0;
  std::string etag_;
  std::string last_modified_;
};

// "bytes 0-99/1000" (first = 0, last = 99, total = 1000), "bytes */1000" (416's form), with "*"
// for an unknown total. Fields absent where the header does not give them; nullopt if malformed.
struct ContentRange {
  std::optional<uint64_t> first, last, total;
};
std::optional<ContentRange> parse_content_range(std::string_view value);

}  // namespace tensorinit::io
