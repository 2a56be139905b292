#include "io/remote_endpoint.hpp"

#include <fmt/format.h>

#include <array>

#include "io/s3_location.hpp"
#include "io/sigv4.hpp"

namespace tensorinit::io {
namespace {

// s3: s3://bucket/prefix/ on config.endpoint (default AWS), SigV4-signed.
Result<RemoteEndpoint> s3_endpoint(const RemoteConfig& config) {
  auto location = parse_s3_location(config);
  if (!location) return std::unexpected(location.error());
  auto credentials = resolve_credentials(config);
  if (!credentials) return std::unexpected(credentials.error());
  auto signer = std::make_shared<SigV4Signer>(std::move(*credentials), SigV4Options{.region = location->region});
  return RemoteEndpoint{.wire_url = [s3 = std::move(*location)](const std::string& name) {
                          return s3.object_url(s3.key_of(name));
                        },
                        .signer = std::move(signer)};
}

// http: the prefix itself, unsigned (a token may ride in its query or userinfo).
Result<RemoteEndpoint> http_endpoint(const RemoteConfig& config) {
  return RemoteEndpoint{.wire_url = [prefix = config.url](const std::string& name) {
    // The same unreserved set keeps '/' between segments; a query (a token) stays after the path.
    return prefix.join(encode_s3_key(name)).reveal();
  }};
}

struct EndpointRow {
  SourceType type;
  Result<RemoteEndpoint> (*open)(const RemoteConfig& config);
};

// One row per remote row of util/source_type.hpp (tests/unit/io/remote_endpoint_test.cpp checks).
constexpr std::array<EndpointRow, 2> kEndpoints{{
    {SourceType::s3, &s3_endpoint},
    {SourceType::http, &http_endpoint},
}};

const EndpointRow* row_of(SourceType type) {
  for (const EndpointRow& row : kEndpoints)
    if (row.type == type) return &row;
  return nullptr;
}

}  // namespace

Result<RemoteEndpoint> open_endpoint(SourceType type, const RemoteConfig& config) {
  const EndpointRow* row = row_of(type);
  if (!row) return fail(Code::internal, fmt::format("{}: source type {} has no remote endpoint", config.where, to_string(type)));
  return row->open(config);
}

bool has_endpoint(SourceType type) { return row_of(type) != nullptr; }

}  // namespace tensorinit::io
