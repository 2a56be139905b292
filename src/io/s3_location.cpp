#include "io/s3_location.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "io/sigv4.hpp"
#include "util/redact.hpp"

namespace tensorinit::io {
namespace {

bool is_lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// Characters the S3-compatible stores accept in bucket names: AWS and MinIO allow a subset;
// Ceph's legacy names add upper case and '_'; GCS adds '_'. Nothing here needs escaping in a URL.
bool valid_bucket(std::string_view b) {
  return !b.empty() && b.size() <= 255 && std::all_of(b.begin(), b.end(), [](char c) {
    return is_lower_alnum(c) || (c >= 'A' && c <= 'Z') || c == '.' || c == '-' || c == '_';
  });
}

// A bucket can be a host name prefix when each dot-separated label is a DNS label in lower case.
bool dns_compatible(std::string_view b) {
  if (b.size() < 3 || b.size() > 63) return false;
  size_t start = 0;
  while (start <= b.size()) {
    size_t dot = b.find('.', start);
    std::string_view label = b.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (label.empty() || label.front() == '-' || label.back() == '-') return false;
    if (!std::all_of(label.begin(), label.end(), [](char c) { return is_lower_alnum(c) || c == '-'; })) return false;
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return true;
}

bool is_ip_literal(std::string_view host) {
  // An IPv6 literal, or a dotted IPv4 address: no bucket can be prepended to either.
  return host.starts_with('[') ||
         std::all_of(host.begin(), host.end(), [](char c) { return (c >= '0' && c <= '9') || c == '.'; });
}

bool valid_region(std::string_view r) {
  return !r.empty() && std::all_of(r.begin(), r.end(), [](char c) { return is_lower_alnum(c) || c == '-'; });
}

}  // namespace

std::string encode_s3_key(std::string_view key) { return sigv4_uri_encode(key, /*keep_slash=*/true); }

std::string S3Location::object_url(std::string_view key) const { return base_url + '/' + encode_s3_key(key); }

Result<S3Location> parse_s3_location(const S3Config& source) {
  auto bad = [&](std::string what) { return fail(Code::bad_manifest, fmt::format("{}: {}", source.where, what)); };
  std::string_view url = source.url.reveal();  // parsed here; messages print source.url (redacted)
  if (url.size() < 5 || !(url.substr(0, 5) == "s3://" || url.substr(0, 5) == "S3://"))
    return bad(fmt::format("s3 url '{}' does not start with s3://", source.url));
  url.remove_prefix(5);
  const size_t slash = url.find('/');
  S3Location loc;
  loc.bucket = url.substr(0, slash);
  if (slash != std::string_view::npos) loc.prefix = url.substr(slash + 1);
  if (!loc.prefix.empty() && !loc.prefix.ends_with('/')) loc.prefix += '/';
  if (!valid_bucket(loc.bucket)) {
    // "s3://key:secret@bucket/" puts credentials where the bucket goes: quoted as redact_url would.
    std::string shown = loc.bucket;
    if (size_t at = shown.rfind('@'); at != std::string::npos) shown = "***" + shown.substr(at);
    return bad(fmt::format("s3 url '{}': bucket name '{}' is empty or has characters other than letters, digits, "
                           "'.', '-' and '_'", source.url, printable(shown)));
  }

  loc.region = source.region.empty() ? "us-east-1" : source.region;
  if (!valid_region(loc.region))
    return bad(fmt::format("s3 region '{}' has characters other than a-z, 0-9 and '-'", printable(loc.region)));

  const bool aws = source.endpoint.empty();
  const std::string endpoint = aws ? fmt::format("https://s3.{}.amazonaws.com", loc.region) : source.endpoint.reveal();
  auto parts = split_url(endpoint);
  if (!parts) return bad(fmt::format("s3 endpoint '{}': {}", redact_url(endpoint), parts.error()));
  if (!parts->query.empty() || endpoint.find('#') != std::string::npos)
    return bad(fmt::format("s3 endpoint '{}' has a query or fragment", redact_url(endpoint)));
  std::string base_path = parts->path;
  while (base_path.ends_with('/')) base_path.pop_back();

  const bool virtual_ok = dns_compatible(loc.bucket) && !is_ip_literal(parts->host);
  if (source.path_style.has_value()) {
    loc.path_style = *source.path_style;
    if (!loc.path_style && !virtual_ok)
      return bad(fmt::format("s3 bucket '{}' cannot be virtual-hosted on '{}' (the bucket is not a lower-case DNS "
                             "name, or the endpoint is an IP address): set path_style: true", loc.bucket, redact_url(endpoint)));
  } else {
    const bool dots_over_tls = loc.bucket.find('.') != std::string::npos && parts->scheme == "https";
    loc.path_style = !aws || !virtual_ok || dots_over_tls;
  }

  const std::string authority = parts->port.empty() ? parts->host : parts->host + ':' + parts->port;
  if (loc.path_style)
    loc.base_url = fmt::format("{}://{}{}/{}", parts->scheme, authority, base_path, loc.bucket);
  else
    loc.base_url = fmt::format("{}://{}.{}{}", parts->scheme, loc.bucket, authority, base_path);
  return loc;
}

}  // namespace tensorinit::io
