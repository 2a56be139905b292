#include "io/http_retry.hpp"

#include <time.h>

#include <algorithm>
#include <charconv>
#include <condition_variable>
#include <ctime>
#include <fmt/format.h>
#include <mutex>
#include <random>

#include <curl/curl.h>

namespace tensorinit::io {
namespace {

using std::chrono::milliseconds;

// libcurl errors that another attempt cannot fix: the URL, the build, TLS trust.
bool curl_error_is_final(int code) {
  switch (code) {
    case CURLE_UNSUPPORTED_PROTOCOL: case CURLE_URL_MALFORMAT: case CURLE_NOT_BUILT_IN:
    case CURLE_OUT_OF_MEMORY: case CURLE_BAD_FUNCTION_ARGUMENT: case CURLE_UNKNOWN_OPTION:
    case CURLE_SSL_CERTPROBLEM: case CURLE_PEER_FAILED_VERIFICATION: case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR: case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
      return true;
    default:
      return false;
  }
}

// S3 answers some credential problems with 400 rather than 403.
bool is_credential_error(std::string_view code) {
  return code == "ExpiredToken" || code == "InvalidToken" || code == "TokenRefreshRequired" ||
         code == "AuthorizationHeaderMalformed" || code == "InvalidAccessKeyId";
}

milliseconds full_jitter(milliseconds base, milliseconds max, unsigned retry) {
  milliseconds cap = base;
  for (unsigned i = 1; i < retry && cap < max; ++i) cap *= 2;
  cap = std::min(cap, max);
  thread_local std::minstd_rand random{std::random_device{}()};
  return milliseconds(std::uniform_int_distribution<int64_t>(0, std::max<int64_t>(cap.count(), 0))(random));
}

}  // namespace

std::string describe(const Exchange& ex, milliseconds stall_timeout) {
  if (ex.refused) return ex.refused->message;
  if (ex.stopped) return "stopped";
  std::string status;
  if (ex.head.status != 0) {
    status = fmt::format("HTTP {}", ex.head.status);
    if (!ex.error_code.empty()) status += fmt::format(" ({})", ex.error_code);
  }
  if (ex.stalled && !ex.too_slow.empty()) return fmt::format("{}{}too slow: {}", status, status.empty() ? "" : ", ", ex.too_slow);
  if (ex.stalled) return fmt::format("{}{}no data for {} ms", status, status.empty() ? "" : ", ", stall_timeout.count());
  if (ex.curl_code != 0)
    return fmt::format("{}{}{} (curl error {})", status, status.empty() ? "" : ", body broke: ", ex.curl_error, ex.curl_code);
  if (ex.head.status >= 200 && ex.head.status < 300) return status + " with an empty body";
  return status;
}

std::optional<milliseconds> parse_retry_after(std::string_view value) {
  if (value.empty()) return std::nullopt;
  uint64_t seconds = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
  if (ec == std::errc() && end == value.data() + value.size()) return milliseconds(seconds * 1000);
  std::tm tm{};  // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
  const std::string text(value);
  const char* rest = ::strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (!rest || *rest) return std::nullopt;
  const auto at = std::chrono::system_clock::from_time_t(::timegm(&tm));
  const auto wait = std::chrono::duration_cast<milliseconds>(at - std::chrono::system_clock::now());
  return std::max(wait, milliseconds(0));
}

Error Retrier::error(Code code, const Exchange& ex) const {
  return Error{code, fmt::format("{}: {}: {}", name_, what_, describe(ex, options_.stall_timeout))};
}

Status Retrier::after(const Exchange& ex) {
  if (ex.stopped || stop_.stop_requested()) return fail(Code::stopped, fmt::format("{}: stopped", name_));
  if (ex.refused) return std::unexpected(Error{ex.refused->code, fmt::format("{}: {}: {}", name_, what_, ex.refused->message)});
  const long status = ex.head.status;
  const bool transport_failed = ex.stalled || ex.curl_code != 0;
  if (!transport_failed || status >= 300) {  // judged by the status
    if (status == 404 || status == 410) return std::unexpected(error(Code::no_source, ex));
    if (status == 401 || status == 403 || (status == 400 && is_credential_error(ex.error_code)))
      return std::unexpected(error(Code::denied, ex));
    const bool transient = status == 408 || status == 429 || (status >= 500 && status < 600) ||
                           (status >= 200 && status < 300);
    if (!transient) return std::unexpected(error(Code::unavailable, ex));
  } else if (!ex.stalled && curl_error_is_final(ex.curl_code)) {
    return std::unexpected(error(Code::unavailable, ex));
  }
  std::optional<milliseconds> at_least = parse_retry_after(ex.head.retry_after);
  if (at_least && *at_least > options_.backoff_max) {
    Error e = error(Code::unavailable, ex);
    e.message += fmt::format(" (asked to retry after {} s, more than the {} ms backoff limit)", at_least->count() / 1000,
                             options_.backoff_max.count());
    return std::unexpected(std::move(e));
  }
  return wait(ex, at_least);
}

Status Retrier::wait(const Exchange& ex, std::optional<milliseconds> at_least) {
  if (attempts_ > options_.retries) {
    Error e = error(Code::unavailable, ex);
    e.message += fmt::format(" (gave up after {} attempts)", attempts_);
    return std::unexpected(std::move(e));
  }
  const milliseconds delay = std::max(full_jitter(options_.backoff_base, options_.backoff_max, attempts_),
                                      at_least.value_or(milliseconds(0)));
  ++attempts_;
  // A stop (SIGTERM during staging) ends the wait at once instead of sleeping out the backoff.
  std::mutex mutex;
  std::condition_variable_any wake;
  std::unique_lock lock(mutex);
  wake.wait_for(lock, stop_, delay, [] { return false; });
  if (stop_.stop_requested()) return fail(Code::stopped, fmt::format("{}: stopped", name_));
  return {};
}

}  // namespace tensorinit::io
