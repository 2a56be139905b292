// The keys of remote (s3, http) source entries: URLs (never quoted unredacted), credentials,
// transport and retry settings.
#include "manifest/remote_keys.hpp"

#include <algorithm>
#include <array>
#include <ranges>
#include <span>

#include "util/redact.hpp"

namespace tensorinit::manifest {
namespace {

constexpr std::array<std::string_view, 2> kHttpSchemes{"http://", "https://"};

// The host part of "scheme://host[:port]/...", or "" when `url` does not start with one of the
// schemes (empty ones unused) or has no host.
std::string url_host(std::string_view url, std::span<const std::string_view> schemes) {
  for (auto scheme : schemes) {
    if (scheme.empty() || !url.starts_with(scheme)) continue;
    std::string_view rest = url.substr(scheme.size());
    std::string_view host = rest.substr(0, rest.find_first_of("/?#"));
    if (size_t at = host.rfind('@'); at != std::string_view::npos) host.remove_prefix(at + 1);
    for (char c : host)
      if (c == ' ' || c == '\t') return "";
    return std::string(host);
  }
  return "";
}

// Whether "scheme://user:password@host/..." has the user:password@ part.
bool has_userinfo(std::string_view url) {
  size_t scheme = url.find("://");
  std::string_view rest = scheme == std::string_view::npos ? url : url.substr(scheme + 3);
  return rest.substr(0, rest.find_first_of("/?#")).find('@') != std::string_view::npos;
}

bool valid_bucket(std::string_view bucket) {
  if (bucket.empty() || bucket.size() > 255) return false;
  for (char c : bucket)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
          c == '-' || c == '_'))
      return false;
  return true;
}

// A weight file under a remote prefix: a relative key, no empty or dot segments.
bool valid_remote_file(std::string_view name) {
  if (name.empty() || name.front() == '/' || name.find('\0') != std::string_view::npos) return false;
  for (auto part : std::views::split(name, '/')) {
    const std::string_view segment(part.begin(), part.end());
    if (segment.empty() || segment == "." || segment == "..") return false;
  }
  return true;
}

}  // namespace

bool takes_key(const SourceTypeInfo& type, std::string_view key) {
  for (auto part : std::views::split(type.keys, std::string_view(", ")))
    if (std::string_view(part.begin(), part.end()) == key) return true;
  return false;
}

void parse_remote_key(const Fields& f, Source& source, const std::string& name, const Field& field) {
  const SourceTypeInfo& type = source_type_info(source.type);
  const std::string word(type.word);
  if (!takes_key(type, name))
    f.fail(field, "not allowed for type " + word + " (" + word + " sources take " + std::string(type.keys) + ")");
  if (name == "files") {
    constexpr std::string_view allowed = "a list of weight file names under url, e.g. [model.safetensors]";
    for (const Field& item : f.items(field, allowed)) {
      std::string file = f.text(item, allowed);
      if (!valid_remote_file(file)) f.fail(item, f.quoted(item, file) + " is not a relative file name (" + std::string(allowed) + ")");
      source.files.push_back(std::move(file));
    }
  } else if (name == "ca_file") {
    source.ca_file = f.optional_text(field, "a PEM file of CA certificates");
  } else if (name == "connections") {
    constexpr std::string_view allowed = "auto or an integer 1..256";
    std::string text = f.text(field, allowed);
    if (text != "auto") source.connections = static_cast<uint32_t>(f.integer(field, 1, 256, allowed));
  } else if (name == "retries") {
    source.retries = static_cast<uint32_t>(f.integer(field, 0, 100, "an integer 0..100"));
  } else if (name == "stall_timeout") {
    source.stall_timeout = f.duration(field, "e.g. 10s, 500ms");
    if (source.stall_timeout.count() < 1) f.fail(field, "must be at least 1ms (e.g. 10s)");
  } else if (name == "url") {
    source.url = f.text(field, type.url_allowed);
    const std::string host = url_host(source.url.reveal(), type.url_schemes);
    if (type.url_host_is_bucket ? !valid_bucket(host) : host.empty())
      f.fail(field, "'" + source.url.redacted() + "' is not an " + word + " URL (" + std::string(type.url_allowed) + ")");
    if (!type.url_credentials_allowed && has_userinfo(source.url.reveal()))
      f.fail(field, "'" + source.url.redacted() + "': credentials in an " + word + " URL are not allowed (use "
                    "access_key_id and secret_access_key, usually ${AWS_ACCESS_KEY_ID} and ${AWS_SECRET_ACCESS_KEY})");
  } else if (name == "endpoint") {
    source.endpoint = f.text(field, "an http:// or https:// URL");
    if (url_host(source.endpoint.reveal(), kHttpSchemes).empty())
      f.fail(field, "'" + source.endpoint.redacted() + "' is not an endpoint URL (http://host:port or https://host)");
    if (has_userinfo(source.endpoint.reveal()))
      f.fail(field, "'" + source.endpoint.redacted() + "': credentials in the endpoint are not allowed (use "
                    "access_key_id and secret_access_key, usually ${AWS_ACCESS_KEY_ID} and ${AWS_SECRET_ACCESS_KEY})");
  } else if (name == "region") {
    source.region = f.text(field, "a region name such as us-east-1");
  } else if (name == "path_style") {
    source.path_style = f.word<bool>(field, {{"true", true}, {"false", false}});
  } else if (name == "access_key_id") {
    source.access_key_id = f.optional_text(field, "an access key id, usually ${AWS_ACCESS_KEY_ID}");
  } else if (name == "secret_access_key") {
    source.secret_access_key = Secret(f.optional_text(field, "a secret key, usually ${AWS_SECRET_ACCESS_KEY}"));
  } else if (name == "session_token") {
    source.session_token = Secret(f.optional_text(field, "a session token, usually ${AWS_SESSION_TOKEN}"));
  } else {
    f.fail(field, "a row of util/source_type.hpp names a key parse_remote_key does not read");  // a bug, found by tests
  }
}

}  // namespace tensorinit::manifest
