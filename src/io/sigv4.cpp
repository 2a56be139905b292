#include "io/sigv4.hpp"

#include <fmt/format.h>
#include <sodium.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <utility>
#include <vector>

namespace tensorinit::io {
namespace {

// The SHA-256 of an empty body: every request here is a GET or HEAD.
constexpr std::string_view kEmptySha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

std::string hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out += kDigits[c >> 4];
    out += kDigits[c & 15];
  }
  return out;
}

// HMAC-SHA256 with a key of any length (the first key, "AWS4" + secret, is not 32 bytes).
std::string hmac(std::string_view key, std::string_view message) {
  crypto_auth_hmacsha256_state state;
  unsigned char mac[crypto_auth_hmacsha256_BYTES];
  crypto_auth_hmacsha256_init(&state, reinterpret_cast<const unsigned char*>(key.data()), key.size());
  crypto_auth_hmacsha256_update(&state, reinterpret_cast<const unsigned char*>(message.data()), message.size());
  crypto_auth_hmacsha256_final(&state, mac);
  sodium_memzero(&state, sizeof state);
  return std::string(reinterpret_cast<const char*>(mac), sizeof mac);
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// SigV4's Trimall: no leading or trailing whitespace, inner runs collapsed to one space.
std::string trim_all(std::string_view value) {
  std::string out;
  for (size_t i = 0; i < value.size();) {
    if (!is_space(value[i])) {
      out += value[i++];
      continue;
    }
    while (i < value.size() && is_space(value[i])) ++i;
    if (!out.empty() && i < value.size()) out += ' ';
  }
  return out;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

// Query names and values are decoded from their wire form and encoded again, so that whatever
// escaping the URL used ("%2f", "~" as "%7E") signs as the one canonical spelling S3 computes.
std::string canonical_query(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> params;
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view param = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    if (param.empty()) continue;
    size_t eq = param.find('=');
    std::string_view name = param.substr(0, eq);
    std::string_view value = eq == std::string_view::npos ? std::string_view{} : param.substr(eq + 1);
    params.emplace_back(sigv4_uri_encode(percent_decode(name), false), sigv4_uri_encode(percent_decode(value), false));
  }
  // By encoded name, then value; comparing "name=value" strings would put "a-b=1" before "a=1".
  std::sort(params.begin(), params.end());
  std::string out;
  for (const auto& [name, value] : params) out += fmt::format("{}{}={}", out.empty() ? "" : "&", name, value);
  return out;
}

bool is_signer_owned(std::string_view lower_name) {
  return lower_name == "authorization" || lower_name == "x-amz-date" || lower_name == "x-amz-content-sha256" ||
         lower_name == "x-amz-security-token";
}

Result<std::string> amz_date(std::chrono::system_clock::time_point now) {
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  char out[32];
  if (!::gmtime_r(&t, &tm) || std::strftime(out, sizeof out, "%Y%m%dT%H%M%SZ", &tm) != 16)
    return fail(Code::internal, "sigv4: the clock gave a time that cannot be formatted");
  return std::string(out);
}

}  // namespace

std::string sigv4_uri_encode(std::string_view bytes, bool keep_slash) {
  static constexpr char kDigits[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(bytes.size());
  for (unsigned char c : bytes) {
    const bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                            c == '.' || c == '_' || c == '~' || (keep_slash && c == '/');
    if (unreserved) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kDigits[c >> 4];
      out += kDigits[c & 15];
    }
  }
  return out;
}

std::expected<UrlParts, std::string> split_url(std::string_view url) {
  UrlParts u;
  const size_t sep = url.find("://");
  if (sep == std::string_view::npos) return std::unexpected("not an absolute URL");
  u.scheme = lower(url.substr(0, sep));
  if (u.scheme != "http" && u.scheme != "https") return std::unexpected("the scheme is not http or https");
  std::string_view rest = url.substr(sep + 3);
  rest = rest.substr(0, rest.find('#'));
  const size_t authority_end = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, authority_end);
  rest = authority_end == std::string_view::npos ? std::string_view{} : rest.substr(authority_end);
  if (authority.find('@') != std::string_view::npos) return std::unexpected("credentials in the URL are not allowed");
  // A port follows the last ':' unless that ':' is inside an IPv6 literal's brackets.
  const size_t colon = authority.rfind(':');
  const size_t bracket = authority.rfind(']');
  std::string_view host = authority;
  if (colon != std::string_view::npos && (bracket == std::string_view::npos || colon > bracket)) {
    host = authority.substr(0, colon);
    u.port = authority.substr(colon + 1);
    if (u.port.empty() || u.port.size() > 5 || !std::all_of(u.port.begin(), u.port.end(), is_digit))
      return std::unexpected("the port is not a number");
  }
  if (host.empty()) return std::unexpected("the URL has no host");
  u.host = host;
  const bool default_port =
      u.port.empty() || (u.scheme == "http" && u.port == "80") || (u.scheme == "https" && u.port == "443");
  u.host_header = default_port ? u.host : u.host + ':' + u.port;
  const size_t q = rest.find('?');
  u.path = rest.substr(0, q);
  if (q != std::string_view::npos) u.query = rest.substr(q + 1);
  return u;
}

std::string percent_decode(std::string_view s) {
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && nibble(s[i + 1]) >= 0 && nibble(s[i + 2]) >= 0) {
      out += static_cast<char>(nibble(s[i + 1]) * 16 + nibble(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::string sha256_hex(std::string_view bytes) {
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
  return hex(std::string_view(reinterpret_cast<const char*>(digest), sizeof digest));
}

Result<AwsCredentials> resolve_credentials(const S3Config& source) {
  auto env = [](const char* name) {
    const char* v = std::getenv(name);
    return std::string(v ? v : "");
  };
  AwsCredentials c;
  const bool key_from_manifest = !source.access_key_id.empty();
  c.access_key_id = key_from_manifest ? source.access_key_id : env("AWS_ACCESS_KEY_ID");
  c.secret_access_key = source.secret_access_key.empty() ? Secret(env("AWS_SECRET_ACCESS_KEY")) : source.secret_access_key;
  if (!source.session_token.empty())
    c.session_token = source.session_token;
  else if (!key_from_manifest)
    c.session_token = Secret(env("AWS_SESSION_TOKEN"));
  if (c.access_key_id.empty())
    return fail(Code::denied, fmt::format("{}: s3 source has no access key id: set access_key_id in the manifest "
                                          "or AWS_ACCESS_KEY_ID in the environment", source.where));
  if (c.secret_access_key.empty())
    return fail(Code::denied, fmt::format("{}: s3 source has no secret access key: set secret_access_key in the "
                                          "manifest or AWS_SECRET_ACCESS_KEY in the environment", source.where));
  return c;
}

SigV4Signer::SigV4Signer(AwsCredentials credentials, SigV4Options options, Clock clock)
    : credentials_(std::move(credentials)), options_(std::move(options)), clock_(std::move(clock)) {
  // Picks libsodium's implementations once; idempotent and thread-safe.
  if (::sodium_init() < 0) raise(Code::internal, "libsodium could not be initialized");
}

Status SigV4Signer::sign(HttpRequest& request) const {
  auto traced = sign_traced(request);
  if (!traced) return std::unexpected(std::move(traced.error()));
  return {};
}

Result<SigV4Trace> SigV4Signer::sign_traced(HttpRequest& request) const {
  auto url = split_url(request.url);
  if (!url) return fail(Code::internal, fmt::format("sigv4: cannot sign {}: {}", redact_url(request.url), url.error()));
  auto date = amz_date(clock_());
  if (!date) return std::unexpected(std::move(date.error()));

  std::erase_if(request.headers, [](const auto& h) { return is_signer_owned(lower(trim_all(h.first))); });
  request.headers.emplace_back("X-Amz-Date", *date);
  const std::string payload = request.payload_sha256.empty() ? std::string(kEmptySha256) : request.payload_sha256;
  if (options_.content_sha256_header) request.headers.emplace_back("X-Amz-Content-SHA256", payload);
  if (!credentials_.session_token.empty())
    request.headers.emplace_back("X-Amz-Security-Token", credentials_.session_token.reveal());

  // Repeated names join their values with ',' in the order given; a stable sort keeps that order.
  std::vector<std::pair<std::string, std::string>> headers;
  bool has_host = false;
  for (const auto& [name, value] : request.headers) {
    std::string key = lower(trim_all(name));
    has_host = has_host || key == "host";
    headers.emplace_back(std::move(key), trim_all(value));
  }
  if (!has_host) headers.emplace_back("host", url->host_header);
  std::stable_sort(headers.begin(), headers.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::string canonical_headers, signed_headers;
  for (size_t i = 0; i < headers.size(); ++i) {
    if (i > 0 && headers[i].first == headers[i - 1].first) {
      canonical_headers.back() = ',';
    } else {
      signed_headers += (signed_headers.empty() ? "" : ";") + headers[i].first;
      canonical_headers += headers[i].first + ':';
    }
    canonical_headers += headers[i].second + '\n';
  }

  SigV4Trace t;
  t.canonical_request = fmt::format("{}\n{}\n{}\n{}\n{}\n{}", request.method, url->path.empty() ? "/" : url->path,
                                    canonical_query(url->query), canonical_headers, signed_headers, payload);
  const std::string day = date->substr(0, 8);
  const std::string scope = fmt::format("{}/{}/{}/aws4_request", day, options_.region, options_.service);
  t.string_to_sign = fmt::format("AWS4-HMAC-SHA256\n{}\n{}\n{}", *date, scope, sha256_hex(t.canonical_request));
  std::string key = hmac("AWS4" + credentials_.secret_access_key.reveal(), day);
  key = hmac(key, options_.region);
  key = hmac(key, options_.service);
  key = hmac(key, "aws4_request");
  const std::string signature = hex(hmac(key, t.string_to_sign));
  t.authorization = fmt::format("AWS4-HMAC-SHA256 Credential={}/{}, SignedHeaders={}, Signature={}",
                                credentials_.access_key_id, scope, signed_headers, signature);
  request.headers.emplace_back("Authorization", t.authorization);
  return t;
}

}  // namespace tensorinit::io
