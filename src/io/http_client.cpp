#include "io/http_client.hpp"

#include <fmt/format.h>

#include "io/curl_library.hpp"
#include "io/http_transfer.hpp"
#include "util/redact.hpp"

namespace tensorinit::io {
namespace {

// libcurl's default receive buffer is 16 KiB; 512 KiB means fewer, larger writes into the
// destination (libcurl caps it at CURL_MAX_READ_SIZE, 10 MiB). Measured on loopback from nginx,
// one stream of 16 MiB ranges: 16 KiB to 2 MiB all gave 0.7-1.1 GB/s, differences within the
// noise of a shared 2-core machine; worth measuring again on a real network.
constexpr long kBufferSize = 512 * 1024;

std::string_view scheme_of(std::string_view url) {
  const size_t sep = url.find("://");
  return sep == std::string_view::npos ? std::string_view{} : url.substr(0, sep);
}

bool is_redirect(long status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

void replace_all(std::string& text, std::string_view what, std::string_view with) {
  if (what.empty()) return;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + with.size()))
    text.replace(at, what.size(), with);
}

// libcurl's messages name hosts, not queries or headers; this makes sure of it.
std::string scrub(std::string text, const HttpRequest& request) {
  replace_all(text, request.url, redact_url(request.url));
  if (size_t q = request.url.find('?'); q != std::string::npos && q + 1 < request.url.size())
    replace_all(text, std::string_view(request.url).substr(q + 1), "...");
  for (const auto& [name, value] : request.headers)
    if (value.size() >= 8) replace_all(text, value, "***");
  return text;
}

}  // namespace

struct HttpClient::Handle {
  explicit Handle(const CurlApi& curl) : api(curl), easy(curl.easy_init()), multi(curl.multi_init()) {}
  ~Handle() {
    if (easy) api.easy_cleanup(easy);
    if (multi) api.multi_cleanup(multi);  // closes the connections it kept
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;

  const CurlApi& api;
  CURL* easy;
  CURLM* multi;  // holds the connection cache: one kept-alive connection per handle
};

// A handle checked out for one request, returned to the pool when the request is done.
class HttpClient::Lease {
 public:
  Lease(HttpClient& client, std::unique_ptr<Handle> handle) : client_(client), handle_(std::move(handle)) {}
  ~Lease() { client_.give_back(std::move(handle_)); }
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;
  Handle& operator*() const { return *handle_; }

 private:
  HttpClient& client_;
  std::unique_ptr<Handle> handle_;
};

std::string url_origin(std::string_view url) {
  const std::string scheme = ascii_lower(scheme_of(url));
  if (scheme.empty()) return {};
  std::string_view authority = url.substr(scheme.size() + 3);
  authority = authority.substr(0, authority.find_first_of("/?#"));
  if (size_t at = authority.rfind('@'); at != std::string_view::npos) authority.remove_prefix(at + 1);
  const size_t bracket = authority.rfind(']');  // IPv6 literal: its colons are not the port's
  const size_t colon = authority.rfind(':');
  std::string_view host = authority, port;
  if (colon != std::string_view::npos && (bracket == std::string_view::npos || colon > bracket)) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (port.empty()) port = scheme == "https" ? "443" : scheme == "http" ? "80" : "";
  return fmt::format("{}://{}:{}", scheme, ascii_lower(host), port);
}

Result<std::shared_ptr<HttpClient>> HttpClient::create(const RemoteOptions& options) {
  auto api = curl_library();
  if (!api) return std::unexpected(api.error());
  return std::shared_ptr<HttpClient>(new HttpClient(**api, options));
}

HttpClient::HttpClient(const CurlApi& api, RemoteOptions options) : api_(api), options_(std::move(options)) {}

HttpClient::~HttpClient() = default;

Result<std::unique_ptr<HttpClient::Handle>> HttpClient::checkout() {
  {
    std::lock_guard lock(mutex_);
    if (!idle_.empty()) {
      auto handle = std::move(idle_.back());
      idle_.pop_back();
      return handle;
    }
  }
  auto handle = std::make_unique<Handle>(api_);
  if (!handle->easy || !handle->multi) return fail(Code::unavailable, "libcurl could not create a transfer handle");
  CURL* h = handle->easy;
  CURLcode rc = CURLE_OK;
  auto set = [&](CURLoption option, auto value) {
    if (rc == CURLE_OK) rc = api_.set(h, option, value);
  };
  set(CURLOPT_NOSIGNAL, 1L);  // no SIGALRM for DNS timeouts: signals belong to the init
  set(CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_1_1));
  set(CURLOPT_TCP_KEEPALIVE, 1L);
  set(CURLOPT_TCP_KEEPIDLE, 30L);
  set(CURLOPT_TCP_KEEPINTVL, 10L);
  set(CURLOPT_BUFFERSIZE, kBufferSize);
  set(CURLOPT_SSL_VERIFYPEER, 1L);
  set(CURLOPT_SSL_VERIFYHOST, 2L);
  if (!options_.ca_file.empty()) set(CURLOPT_CAINFO, options_.ca_file.c_str());
  set(CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options_.connect_timeout.count()));
  set(CURLOPT_FOLLOWLOCATION, 0L);  // send() follows, so that credentials stay with their origin
  set(CURLOPT_PATH_AS_IS, 1L);  // keys like "a/../b" go out as signed (SigV4 signs the path as sent)
  set(CURLOPT_USERAGENT, "tensorinit/" TENSORINIT_VERSION);
  set(CURLOPT_HEADERFUNCTION, &on_header);
  set(CURLOPT_WRITEFUNCTION, &on_body);
  if (rc != CURLE_OK) return fail(Code::unavailable, fmt::format("libcurl refused a setting: {}", api_.easy_strerror(rc)));
  return handle;
}

void HttpClient::give_back(std::unique_ptr<Handle> handle) {
  std::lock_guard lock(mutex_);
  idle_.push_back(std::move(handle));
}

Exchange HttpClient::perform_once(const HttpRequest& request, BodyTarget& target, const TransferLimits& limits,
                                  std::stop_token stop) {
  Exchange ex;
  if (stop.stop_requested()) {
    ex.stopped = true;
    return ex;
  }
  const std::string scheme = ascii_lower(scheme_of(request.url));
  if (scheme != "http" && scheme != "https") {
    ex.refused = Error{Code::unavailable, fmt::format("{}: not an http or https URL", redact_url(request.url))};
    return ex;
  }
  if (request.method != "GET" && request.method != "HEAD") {
    ex.refused = Error{Code::internal, fmt::format("HTTP method {} is not supported", request.method)};
    return ex;
  }
  auto handle = checkout();
  if (!handle) {
    ex.refused = handle.error();
    return ex;
  }
  Lease lease(*this, std::move(*handle));
  CURL* h = (*lease).easy;

  curl_slist* headers = nullptr;
  for (const auto& [name, value] : request.headers)
    headers = api_.slist_append(headers, fmt::format("{}: {}", name, value).c_str());
  char error_text[CURL_ERROR_SIZE] = {};
  Transfer t{target, stop, limits};
  api_.set(h, CURLOPT_URL, request.url.c_str());
  api_.set(h, CURLOPT_HTTPHEADER, headers);
  api_.set(h, CURLOPT_NOBODY, request.method == "HEAD" ? 1L : 0L);
  if (request.method == "GET") api_.set(h, CURLOPT_HTTPGET, 1L);
  api_.set(h, CURLOPT_HEADERDATA, static_cast<void*>(&t));
  api_.set(h, CURLOPT_WRITEDATA, static_cast<void*>(&t));
  api_.set(h, CURLOPT_ERRORBUFFER, static_cast<void*>(error_text));

  std::string failure;
  const CURLcode rc = run_transfer(api_, h, (*lease).multi, t, failure);

  long connects = 0;
  api_.easy_getinfo(h, CURLINFO_NUM_CONNECTS, &connects);
  char* redirect = nullptr;
  if (is_redirect(t.head.status)) api_.easy_getinfo(h, CURLINFO_REDIRECT_URL, &redirect);
  if (redirect) ex.redirect_url = redirect;
  // The handle goes back to the pool: nothing of this call may stay pointed to.
  api_.set(h, CURLOPT_HTTPHEADER, static_cast<curl_slist*>(nullptr));
  api_.set(h, CURLOPT_ERRORBUFFER, static_cast<void*>(nullptr));
  api_.slist_free_all(headers);
  requests_.fetch_add(1, std::memory_order_relaxed);
  connections_.fetch_add(static_cast<uint64_t>(connects), std::memory_order_relaxed);

  ex.head = std::move(t.head);
  ex.curl_code = rc;
  if (rc != CURLE_OK)
    ex.curl_error = scrub(!failure.empty() ? failure : error_text[0] ? error_text : api_.easy_strerror(rc), request);
  ex.refused = std::move(t.refused);
  ex.stalled = t.stalled;
  ex.too_slow = std::move(t.too_slow);
  ex.stopped = t.stopped;
  ex.error_code = xml_error_code(t.error_body);
  return ex;
}

Exchange HttpClient::send(const HttpRequest& request, const Headers& transport, const RequestSigner* signer,
                          BodyTarget& target, const TransferLimits& limits, std::stop_token stop) {
  const std::string origin = url_origin(request.url);
  std::string url = request.url;
  for (int hop = 0;; ++hop) {
    HttpRequest wire{request.method, url, {}};
    const bool same_origin = url_origin(url) == origin;
    if (same_origin) wire.headers = request.headers;
    wire.headers.insert(wire.headers.end(), transport.begin(), transport.end());
    if (same_origin && signer) {
      if (auto ok = signer->sign(wire); !ok) {
        Exchange ex;
        ex.refused = ok.error();
        return ex;
      }
    }
    Exchange ex = perform_once(wire, target, limits, stop);
    if (!is_redirect(ex.head.status) || ex.redirect_url.empty() || ex.stopped) return ex;
    const std::string next = ex.redirect_url;
    const std::string next_scheme = ascii_lower(scheme_of(next));
    std::string refusal;
    if (hop == kMaxRedirects) refusal = fmt::format("more than {} redirects", kMaxRedirects);
    else if (next_scheme != "http" && next_scheme != "https") refusal = "not to http or https";
    else if (ascii_lower(scheme_of(url)) == "https" && next_scheme == "http") refusal = "from https to http";
    if (!refusal.empty()) {
      ex.refused = Error{Code::unavailable, fmt::format("redirect to {} refused: {}", redact_url(next), refusal)};
      return ex;
    }
    url = next;
  }
}

}  // namespace tensorinit::io
