#include "io/http_transfer.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <fmt/format.h>
#include <span>

namespace tensorinit::io {
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kErrorBodyKept = 4096;           // enough for an S3 error document's <Code>
constexpr uint64_t kErrorBodyDrained = 64 << 10;  // read to keep the connection; longer: dropped

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// libcurl waits in curl_multi_poll at most this long before the limits and stop are checked
// again (a stop also wakes it at once).
constexpr int kPollMs = 100;

// The body bytes that were still to come when the window began: by the head's Content-Length
// once known, else by the request's size.
uint64_t missing_at_window_start(const Transfer& t) {
  const uint64_t total = t.head.content_length ? *t.head.content_length
                         : t.limits.expected_bytes ? t.limits.expected_bytes
                                                   : TransferLimits::kWindowBytes;
  return total - std::min(total, t.window_body_start);
}

void begin_window(Transfer& t, Clock::time_point now) {
  t.window_open = true;
  t.window_start = now;
  t.window_body_start = t.body_bytes;
}

// The first byte of the answer opens the first minimum-rate window.
void open_window(Transfer& t) {
  if (!t.window_open) begin_window(t, t.last_byte);
}

// Whether the transfer must be abandoned now as too slow; sets t.stalled and t.too_slow.
bool too_slow(Transfer& t, Clock::time_point now) {
  using std::chrono::duration_cast, std::chrono::milliseconds;
  const auto ms = [](Clock::duration d) { return duration_cast<milliseconds>(d).count(); };
  if (now - t.last_byte >= t.limits.stall_timeout) return t.stalled = true;
  if (now - t.started >= t.limits.deadline) {
    t.too_slow = fmt::format("no complete answer within {} ms (the deadline for {} bytes at stall_timeout {} ms)",
                             t.limits.deadline.count(), t.limits.expected_bytes, t.limits.stall_timeout.count());
    return t.stalled = true;
  }
  if (!t.window_open || now - t.window_start < t.limits.stall_timeout) return false;
  const uint64_t got = t.body_bytes - t.window_body_start, needed = t.limits.window_needs(missing_at_window_start(t));
  if (got < needed) {
    t.too_slow = fmt::format("{} bytes in {} ms, under the minimum rate of {} KiB per stall_timeout", got,
                             ms(now - t.window_start), TransferLimits::kWindowBytes >> 10);
    return t.stalled = true;
  }
  begin_window(t, now);
  return false;
}

}  // namespace

std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string xml_error_code(std::string_view body) {
  const size_t open = body.find("<Code>");
  if (open == std::string_view::npos) return {};
  const size_t start = open + 6, end = body.find("</Code>", start);
  if (end == std::string_view::npos || end - start > 64) return {};
  std::string_view code = body.substr(start, end - start);
  const bool plain = std::all_of(code.begin(), code.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
  return plain ? std::string(code) : std::string{};
}

size_t on_header(char* data, size_t size, size_t count, void* user) {
  auto& t = *static_cast<Transfer*>(user);
  const size_t len = size * count;
  t.last_byte = Clock::now();
  open_window(t);
  const std::string_view line(data, len);
  if (line.starts_with("HTTP/")) {  // a new response head (a 1xx comes before the final one)
    t.head = ResponseHead{};
    const size_t sp = line.find(' ');
    if (sp != std::string_view::npos) std::from_chars(line.data() + sp + 1, line.data() + len, t.head.status);
    return len;
  }
  const std::string_view text = trim(line);
  if (text.empty()) {  // the blank line that ends a head
    if (t.head.status >= 200 && t.head.status < 300) {
      if (auto ok = t.target.accept(t.head); !ok) {
        t.refused = ok.error();
        return 0;  // aborts the transfer before any body byte
      }
      t.accepted = true;
    }
    return len;
  }
  const size_t colon = text.find(':');
  if (colon == std::string_view::npos) return len;
  const std::string name = ascii_lower(trim(text.substr(0, colon)));
  const std::string_view value = trim(text.substr(colon + 1));
  if (name == "etag") t.head.etag = value;
  else if (name == "last-modified") t.head.last_modified = value;
  else if (name == "content-range") t.head.content_range = value;
  else if (name == "retry-after") t.head.retry_after = value;
  else if (name == "content-length") {
    uint64_t n = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
    if (ec == std::errc() && end == value.data() + value.size()) t.head.content_length = n;
  }
  return len;
}

size_t on_body(char* data, size_t size, size_t count, void* user) {
  auto& t = *static_cast<Transfer*>(user);
  const size_t len = size * count;
  t.last_byte = Clock::now();
  open_window(t);
  t.body_bytes += len;
  if (t.accepted) {
    if (auto ok = t.target.write(std::as_bytes(std::span(data, len))); !ok) {
      t.refused = ok.error();
      return 0;
    }
    return len;
  }
  // Not a 2xx: keep the start (for its <Code>), drain a little more so the connection survives.
  t.error_bytes += len;
  if (t.error_body.size() < kErrorBodyKept) t.error_body.append(data, std::min(len, kErrorBodyKept - t.error_body.size()));
  return t.error_bytes > kErrorBodyDrained ? 0 : len;
}

CURLcode run_transfer(const CurlApi& api, CURL* easy, CURLM* multi, Transfer& t, std::string& failure) {
  if (CURLMcode mc = api.multi_add_handle(multi, easy); mc != CURLM_OK) {
    failure = api.multi_strerror(mc);
    return CURLE_FAILED_INIT;
  }
  CURLcode result = CURLE_OK;
  {
    std::stop_callback wake(t.stop, [&] { api.multi_wakeup(multi); });  // thread-safe by design
    for (;;) {
      int running = 0, queued = 0;
      const CURLMcode mc = api.multi_perform(multi, &running);
      bool done = false;
      while (CURLMsg* message = api.multi_info_read(multi, &queued))
        if (message->msg == CURLMSG_DONE) result = message->data.result, done = true;
      if (done) break;
      if (mc != CURLM_OK || running == 0) {
        failure = mc != CURLM_OK ? api.multi_strerror(mc) : "transfer ended without a result";
        result = CURLE_FAILED_INIT;
        break;
      }
      if (t.stop.stop_requested()) {
        t.stopped = true;
        result = CURLE_ABORTED_BY_CALLBACK;
        break;
      }
      if (too_slow(t, Clock::now())) {
        result = CURLE_OPERATION_TIMEDOUT;
        break;
      }
      api.multi_poll(multi, nullptr, 0, kPollMs, nullptr);
    }
  }
  api.multi_remove_handle(multi, easy);  // mid-transfer, this closes the connection
  return result;
}

}  // namespace tensorinit::io
