// AWS Signature Version 4 for S3 requests, signed here rather than by libcurl: Debian 12's curl
// 7.88 canonicalizes some object keys wrongly (fixed only in curl 8.3 and later).
// Tested against AWS's published vectors (tests/unit/io/sigv4_test.cpp) and against botocore for
// awkward keys (tests/integration/test_sigv4_botocore.py).
#pragma once

#include <chrono>
#include <expected>
#include <functional>
#include <string>
#include <string_view>

#include "io/http_request.hpp"
#include "io/s3_location.hpp"
#include "util/error.hpp"
#include "util/redact.hpp"

namespace tensorinit::io {

struct AwsCredentials {
  std::string access_key_id;
  Secret secret_access_key;
  Secret session_token;  // empty: long-term keys, no x-amz-security-token
};

// The credentials of an s3 source. access_key_id and secret_access_key each come from the config,
// else from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY. The session token comes from the manifest,
// else from AWS_SESSION_TOKEN only when the key id came from the environment too: a token belongs
// to the temporary key it was issued with, and pairing an ambient token with the manifest's own
// keys would make every request fail. Missing key id or secret: Code::denied naming config.where
// and the variable to set (never a value). Thread-safe if nothing modifies the environment.
Result<AwsCredentials> resolve_credentials(const S3Config& config);

// SigV4's UriEncode: every byte but A-Z a-z 0-9 - . _ ~ becomes %XX (upper-case hex); '/' is kept
// when keep_slash (object key paths) and encoded otherwise (query names and values).
std::string sigv4_uri_encode(std::string_view bytes, bool keep_slash);

// Lower-case hex SHA-256 of bytes (libsodium).
std::string sha256_hex(std::string_view bytes);

// A URL split the way the signer (and the S3 addressing) needs it. Pure functions, thread-safe.
struct UrlParts {
  std::string scheme;       // lower-case: "http" or "https"
  std::string host;         // as written, without port ("[::1]" keeps its brackets)
  std::string port;         // empty when absent
  std::string host_header;  // host[:port], the port dropped when it is the scheme's default, as curl sends it
  std::string path;         // as on the wire, without query or fragment; may be empty
  std::string query;        // after '?', without the '?'; empty when absent
};
// Refuses (with the reason) anything but http(s)://host..., userinfo and non-numeric ports.
std::expected<UrlParts, std::string> split_url(std::string_view url);
// %XX to the byte; a '%' not followed by two hex digits stays literal.
std::string percent_decode(std::string_view s);

struct SigV4Options {
  std::string region = "us-east-1";
  std::string service = "s3";
  // S3 wants x-amz-content-sha256 on every request and signs it; AWS's general test suite (service
  // "service") has no such header, so its vectors run with this off.
  bool content_sha256_header = true;
};

// The intermediate strings of one signature, for tests and the botocore cross-check. The canonical
// request holds the session token (x-amz-security-token): never log it.
struct SigV4Trace {
  std::string canonical_request;
  std::string string_to_sign;
  std::string authorization;
};

// Signs a request in place: replaces any Authorization, X-Amz-Date, X-Amz-Content-SHA256 and
// X-Amz-Security-Token (so a retried request is re-signed cleanly), then signs host and every
// header present, lower-cased with values trimmed and inner runs of whitespace collapsed.
// The canonical URI is the URL's path exactly as encoded on the wire: S3 neither normalizes nor
// double-encodes paths, so a key like "a//b/../c" is signed as sent (the transport must send it
// unaltered, e.g. curl with CURLOPT_PATH_AS_IS). The body is empty (GET/HEAD) unless
// request.payload_sha256 gives its hash (PUT).
// Thread-safe: sign() is const and keeps no state between calls; the clock must be thread-safe.
class SigV4Signer final : public RequestSigner {
 public:
  using Clock = std::function<std::chrono::system_clock::time_point()>;

  SigV4Signer(AwsCredentials credentials, SigV4Options options, Clock clock = &std::chrono::system_clock::now);

  Status sign(HttpRequest& request) const override;
  Result<SigV4Trace> sign_traced(HttpRequest& request) const;

  const SigV4Options& options() const { return options_; }

 private:
  AwsCredentials credentials_;
  SigV4Options options_;
  Clock clock_;
};

}  // namespace tensorinit::io
