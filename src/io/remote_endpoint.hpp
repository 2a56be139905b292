// How a remote source's objects are reached, per source type (util/source_type.hpp's remote rows):
// the wire URL of each object and the signer of its requests. The one place that knows which io
// client serves which type; plan (weights) and app (start-up cache archives) open every remote
// source through it.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "io/http_request.hpp"
#include "util/error.hpp"
#include "util/redact.hpp"
#include "util/source_type.hpp"
#include "util/url.hpp"

namespace tensorinit::io {

// A remote source as configured (plan/remote_model.cpp fills it from the manifest entry; the names
// are the manifest's keys, and a type reads those its row lists). Printed only through Url and
// Secret, which redact.
struct RemoteConfig {
  Url url;                         // the prefix: s3://bucket[/prefix], http(s)://host/prefix/
  Url endpoint;                    // s3; empty: AWS
  std::string region;              // s3; empty: us-east-1
  std::optional<bool> path_style;  // s3; unset: decided by parse_s3_location
  std::string access_key_id;       // s3; empty: AWS_ACCESS_KEY_ID
  Secret secret_access_key;        // s3; empty: AWS_SECRET_ACCESS_KEY
  Secret session_token;            // s3; empty: AWS_SESSION_TOKEN (see resolve_credentials)
  std::string where;               // "file:line:col" of the entry, prefixed to every error
};

struct RemoteEndpoint {
  // The wire URL of an object named relative to the prefix ("model.safetensors"): the only place
  // the source's URL is revealed (userinfo and query included), ready to sign and send.
  std::function<std::string(const std::string& name)> wire_url;
  std::shared_ptr<const RequestSigner> signer;  // null: requests go unsigned
};

// The endpoint of a remote source of `type` (s3: location and credentials resolved, no request
// sent). Errors: Code::bad_manifest or Code::denied naming config.where, never a secret;
// Code::internal for a type without an endpoint (a local one; a remote row missing here).
// Thread-safe.
Result<RemoteEndpoint> open_endpoint(SourceType type, const RemoteConfig& config);

// Whether `type` has an endpoint here (tests: every remote row has one). Thread-safe.
bool has_endpoint(SourceType type);

}  // namespace tensorinit::io
