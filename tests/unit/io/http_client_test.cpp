// The HTTP transport's pieces that need no server: libcurl is loaded on demand (never linked),
// a missing libcurl is a clear Code::unavailable, and the parsers of origins, Content-Range and
// Retry-After.
#include <doctest/doctest.h>

#include <elf.h>
#include <link.h>

#include <string>
#include <vector>

#include "io/curl_library.hpp"
#include "io/http_client.hpp"
#include "io/http_retry.hpp"
#include "io/http_source.hpp"

namespace {

using namespace tensorinit;
using namespace std::chrono_literals;

// The DT_NEEDED entries of this executable: what the dynamic linker maps at exec.
std::vector<std::string> needed_libraries() {
  std::vector<std::string> names;
  const char* strings = nullptr;
  for (const ElfW(Dyn)* d = _DYNAMIC; d->d_tag != DT_NULL; ++d)
    if (d->d_tag == DT_STRTAB) strings = reinterpret_cast<const char*>(d->d_un.d_ptr);
  REQUIRE(strings != nullptr);
  for (const ElfW(Dyn)* d = _DYNAMIC; d->d_tag != DT_NULL; ++d)
    if (d->d_tag == DT_NEEDED) names.emplace_back(strings + d->d_un.d_val);
  return names;
}

}  // namespace

TEST_CASE("io: libcurl is not linked into tensorinit_core, only loaded on demand") {
  const auto names = needed_libraries();
  CHECK_FALSE(names.empty());  // libc at least: the walk works
  for (const auto& name : names) CHECK_MESSAGE(name.find("curl") == std::string::npos, name);
  auto api = io::curl_library();
  REQUIRE_MESSAGE(api.has_value(), api.error().message);
  CHECK(std::string((*api)->version()).find("libcurl/") != std::string::npos);
  CHECK(io::curl_library().value() == *api);  // loaded once
}

TEST_CASE("io: the libcurl search path starts beside the binary, then the system") {
  const auto paths = io::curl_search_path();
  REQUIRE(paths.size() == 2);
  CHECK(paths[0].ends_with("/../lib/tensorinit/libcurl.so.4"));
  CHECK(paths[0].starts_with("/"));
  CHECK(paths[1] == "libcurl.so.4");
}

TEST_CASE("io: a libcurl that cannot be loaded is Code::unavailable naming what was tried") {
  const std::vector<std::string> missing{"/nonexistent/libcurl.so.4"};
  auto none = io::load_curl(missing);
  REQUIRE_FALSE(none.has_value());
  CHECK(none.error().code == Code::unavailable);
  CHECK(none.error().message.find("remote sources need libcurl") != std::string::npos);
  CHECK(none.error().message.find("/nonexistent/libcurl.so.4") != std::string::npos);

  // A library that loads but is not libcurl: refused, and the next candidate is tried.
  const std::vector<std::string> wrong_then_right{"libz.so.1", "libcurl.so.4"};
  CHECK(io::load_curl(wrong_then_right).has_value());
  const std::vector<std::string> only_wrong{"libz.so.1"};
  auto wrong = io::load_curl(only_wrong);
  REQUIRE_FALSE(wrong.has_value());
  CHECK(wrong.error().message.find("no symbol curl_global_init") != std::string::npos);
}

TEST_CASE("io: url_origin compares scheme, host and port, with default ports filled in") {
  CHECK(io::url_origin("http://Example.COM/a?b") == "http://example.com:80");
  CHECK(io::url_origin("https://example.com:443/x") == "https://example.com:443");
  CHECK(io::url_origin("https://example.com") == io::url_origin("https://example.com:443/"));
  CHECK(io::url_origin("http://user:pw@host:9000/p") == "http://host:9000");
  CHECK(io::url_origin("http://[::1]:8080/p") == "http://[::1]:8080");
  CHECK(io::url_origin("http://[::1]/p") == "http://[::1]:80");
  CHECK(io::url_origin("http://h:1/p") != io::url_origin("http://h:2/p"));
  CHECK(io::url_origin("http://h/p") != io::url_origin("https://h/p"));
  CHECK(io::url_origin("no scheme") == "");
}

TEST_CASE("io: Content-Range parsing") {
  auto r = io::parse_content_range("bytes 0-99/1000");
  REQUIRE(r.has_value());
  CHECK(r->first == 0u);
  CHECK(r->last == 99u);
  CHECK(r->total == 1000u);
  auto unsatisfied = io::parse_content_range("bytes */0");
  REQUIRE(unsatisfied.has_value());
  CHECK_FALSE(unsatisfied->first.has_value());
  CHECK(unsatisfied->total == 0u);
  auto unknown_total = io::parse_content_range("bytes 5-9/*");
  REQUIRE(unknown_total.has_value());
  CHECK_FALSE(unknown_total->total.has_value());
  CHECK(unknown_total->first == 5u);
  CHECK_FALSE(io::parse_content_range("bytes 9-5/10").has_value());
  CHECK_FALSE(io::parse_content_range("bytes 0-99").has_value());
  CHECK_FALSE(io::parse_content_range("items 0-1/2").has_value());
  CHECK_FALSE(io::parse_content_range("bytes -1-5/10").has_value());
  CHECK_FALSE(io::parse_content_range("").has_value());
}

TEST_CASE("io: Retry-After in seconds or as an HTTP-date") {
  CHECK(io::parse_retry_after("3") == 3000ms);
  CHECK(io::parse_retry_after("0") == 0ms);
  CHECK_FALSE(io::parse_retry_after("").has_value());
  CHECK_FALSE(io::parse_retry_after("soon").has_value());
  CHECK_FALSE(io::parse_retry_after("-1").has_value());
  CHECK(io::parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT") == 0ms);  // in the past: now
  const auto later = io::parse_retry_after("Fri, 31 Dec 2100 23:59:59 GMT");
  REQUIRE(later.has_value());
  CHECK(*later > std::chrono::hours(24 * 365));
}

TEST_CASE("io: describe says what failed without anything of the request") {
  io::Exchange ex;
  ex.head.status = 503;
  ex.error_code = "SlowDown";
  CHECK(io::describe(ex, 1000ms) == "HTTP 503 (SlowDown)");
  io::Exchange broken;
  broken.head.status = 206;
  broken.curl_code = 18;
  broken.curl_error = "transfer closed with 5 bytes remaining to read";
  CHECK(io::describe(broken, 1000ms) == "HTTP 206, body broke: transfer closed with 5 bytes remaining to read (curl error 18)");
  io::Exchange stalled;
  stalled.stalled = true;
  CHECK(io::describe(stalled, 250ms) == "no data for 250 ms");
  io::Exchange slow;
  slow.head.status = 206;
  slow.stalled = true;
  slow.too_slow = "7 bytes in 2000 ms, under the minimum rate of 256 KiB per stall_timeout";
  CHECK(io::describe(slow, 2000ms) == "HTTP 206, too slow: 7 bytes in 2000 ms, under the minimum rate of 256 KiB per stall_timeout");
}
