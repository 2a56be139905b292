#include "io/http_put.hpp"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <fmt/format.h>
#include <memory>

#include "io/curl_library.hpp"
#include "io/http_client.hpp"
#include "io/http_retry.hpp"
#include "util/redact.hpp"

namespace tensorinit::io {
namespace {

struct Body {
  int fd = -1;
  uint64_t size = 0;
  uint64_t sent = 0;
  bool read_error = false;
  const std::stop_token* stop = nullptr;
};

size_t on_read(char* buffer, size_t size, size_t count, void* user) {
  auto* body = static_cast<Body*>(user);
  const uint64_t want = std::min<uint64_t>(size * count, body->size - body->sent);
  if (want == 0) return 0;
  for (;;) {
    ssize_t n = ::pread(body->fd, buffer, want, static_cast<off_t>(body->sent));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      body->read_error = true;
      return CURL_READFUNC_ABORT;
    }
    body->sent += static_cast<uint64_t>(n);
    return static_cast<size_t>(n);
  }
}

size_t on_response(char*, size_t size, size_t count, void*) { return size * count; }  // discarded

int on_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return static_cast<Body*>(user)->stop->stop_requested() ? 1 : 0;
}

// curl_easy_perform is not in CurlApi: one multi handle drives the transfer (as HttpClient does).
CURLcode perform(const CurlApi& api, CURL* h, const std::stop_token& stop) {
  CURLM* multi = api.multi_init();
  if (!multi) return CURLE_OUT_OF_MEMORY;
  api.multi_add_handle(multi, h);
  CURLcode result = CURLE_OK;
  for (int running = 1; running;) {
    if (api.multi_perform(multi, &running) != CURLM_OK) {
      result = CURLE_SEND_ERROR;
      break;
    }
    if (!running) break;
    if (stop.stop_requested()) {
      result = CURLE_ABORTED_BY_CALLBACK;
      break;
    }
    api.multi_poll(multi, nullptr, 0, 100, nullptr);
  }
  int left = 0;
  while (CURLMsg* msg = api.multi_info_read(multi, &left))
    if (msg->msg == CURLMSG_DONE && result == CURLE_OK) result = msg->data.result;
  api.multi_remove_handle(multi, h);
  api.multi_cleanup(multi);
  return result;
}

struct Easy {
  const CurlApi* api;
  CURL* h;
  curl_slist* headers = nullptr;
  ~Easy() {
    if (headers) api->slist_free_all(headers);
    if (h) api->easy_cleanup(h);
  }
};

Exchange put_once(const CurlApi& api, const HttpRequest& request, Body& body, const RemoteOptions& options) {
  Exchange ex;
  Easy easy{&api, api.easy_init()};
  if (!easy.h) {
    ex.curl_code = CURLE_OUT_OF_MEMORY;
    ex.curl_error = "curl_easy_init failed";
    return ex;
  }
  CURL* h = easy.h;
  for (const auto& [name, value] : request.headers)
    easy.headers = api.slist_append(easy.headers, (name + ": " + value).c_str());
  easy.headers = api.slist_append(easy.headers, "Expect:");  // no 100-continue round trip
  api.set(h, CURLOPT_NOSIGNAL, 1L);
  api.set(h, CURLOPT_URL, request.url.c_str());
  api.set(h, CURLOPT_PATH_AS_IS, 1L);
  api.set(h, CURLOPT_HTTPHEADER, easy.headers);
  api.set(h, CURLOPT_UPLOAD, 1L);
  api.set(h, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  api.easy_setopt(h, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(body.size));
  api.easy_setopt(h, CURLOPT_READFUNCTION, &on_read);
  api.set(h, CURLOPT_READDATA, static_cast<void*>(&body));
  api.set(h, CURLOPT_WRITEFUNCTION, &on_response);
  api.set(h, CURLOPT_NOPROGRESS, 0L);
  api.easy_setopt(h, CURLOPT_XFERINFOFUNCTION, &on_progress);
  api.set(h, CURLOPT_XFERINFODATA, static_cast<void*>(&body));
  api.set(h, CURLOPT_SSL_VERIFYPEER, 1L);
  api.set(h, CURLOPT_SSL_VERIFYHOST, 2L);
  if (!options.ca_file.empty()) api.set(h, CURLOPT_CAINFO, options.ca_file.c_str());
  api.set(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options.connect_timeout.count()));
  // A stall: under 1 byte/s for stall_timeout (whole seconds, at least one).
  api.set(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
  api.set(h, CURLOPT_LOW_SPEED_TIME, std::max(1L, static_cast<long>(options.stall_timeout.count() / 1000)));
  api.set(h, CURLOPT_USERAGENT, "tensorinit/" TENSORINIT_VERSION);
  body.sent = 0;
  body.read_error = false;
  const CURLcode rc = perform(api, h, *body.stop);
  api.easy_getinfo(h, CURLINFO_RESPONSE_CODE, &ex.head.status);
  if (rc != CURLE_OK) {
    ex.curl_code = rc;
    ex.curl_error = redact_url(api.easy_strerror(rc));
    if (rc == CURLE_ABORTED_BY_CALLBACK) ex.stopped = true;
    if (body.read_error) ex.refused = Error{Code::io, "the archive could not be read back"};
    ex.head.status = 0;
  }
  return ex;
}

}  // namespace

Status http_put(HttpRequest request, int fd, uint64_t size, const RequestSigner* signer,
                const RemoteOptions& options, std::stop_token stop) {
  auto api = curl_library();
  if (!api) return std::unexpected(api.error());
  const std::string name = redact_url(request.url);
  Retrier retrier(options, stop, name, fmt::format("PUT of {} bytes", size));
  Body body{.fd = fd, .size = size, .stop = &stop};
  for (;;) {
    HttpRequest attempt = request;
    if (signer)
      if (auto ok = signer->sign(attempt); !ok) return ok;
    Exchange ex = put_once(**api, attempt, body, options);
    if (ex.completed() && ex.head.status >= 200 && ex.head.status < 300) return {};
    if (ex.completed() && ex.head.status >= 300 && ex.head.status < 400)
      return fail(Code::unavailable, fmt::format("{}: PUT answered HTTP {} (redirects are not followed for uploads)",
                                                 name, ex.head.status));
    if (auto ok = retrier.after(ex); !ok) return ok;
  }
}

}  // namespace tensorinit::io
