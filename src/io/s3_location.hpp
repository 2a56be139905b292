// Where an s3 source's objects live on the wire: bucket and key prefix from `s3://bucket/prefix/`,
// endpoint, region and addressing style from the source's configuration, and the URL of each object key.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "io/remote_endpoint.hpp"
#include "util/error.hpp"
#include "util/redact.hpp"
#include "util/url.hpp"

namespace tensorinit::io {

// An s3 source as configured: every key of io::RemoteConfig (io/remote_endpoint.hpp).
using S3Config = RemoteConfig;

struct S3Location {
  std::string bucket;
  std::string prefix;    // raw key bytes as written in the s3:// URL; empty or ending in '/'
  std::string region;    // default us-east-1
  bool path_style = false;
  std::string base_url;  // the URL of the bucket, no trailing '/': endpoint/bucket or scheme://bucket.host

  // The key of a weight file: prefix + name.
  std::string key_of(std::string_view file_name) const { return prefix + std::string(file_name); }
  // The wire URL of an object key (a whole key, prefix included), ready to sign and send.
  std::string object_url(std::string_view key) const;
};

// Reads config.url (s3://bucket[/prefix]; a non-empty prefix gets a trailing '/', the s3:// URL is
// taken literally as the AWS CLI does, not percent-decoded), config.endpoint (default
// https://s3.<region>.amazonaws.com; may carry a base path), config.region and config.path_style.
// path_style unset: path-style when an endpoint is given (MinIO, Ceph, R2, GCS), virtual-hosted on
// AWS unless the bucket is no DNS label set or has dots over https (the TLS wildcard
// *.s3.<region>.amazonaws.com covers one label only). Errors: Code::bad_manifest naming config.where.
Result<S3Location> parse_s3_location(const S3Config& config);

// An object key as a URL path: each byte but A-Z a-z 0-9 - . _ ~ and '/' as %XX (upper-case hex),
// the rule SigV4 signs for S3 (no double encoding). "a b+(1)=é" -> "a%20b%2B%281%29%3D%C3%A9".
std::string encode_s3_key(std::string_view key);

}  // namespace tensorinit::io
