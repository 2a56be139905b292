// redact_url: whatever shape a URL with credentials takes, no password, token or signature
// survives; what carries no secret (host, path) stays readable. printable: see url_test.cpp.
#include "util/redact.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>

namespace tensorinit {
namespace {

TEST_CASE("redact_url: userinfo, query and fragment go; host and path stay") {
  CHECK(redact_url("https://user:hunter2@host/m") == "https://***@host/m");
  CHECK(redact_url("https://token@host/m") == "https://***@host/m");
  CHECK(redact_url("https://u:p@ss@host/m") == "https://***@host/m");        // '@' in the password
  CHECK(redact_url("https://host/m?X-Amz-Signature=abc") == "https://host/m?...");
  CHECK(redact_url("https://host/m#token=abc") == "https://host/m?...");
  CHECK(redact_url("https://u:p@host?sig=1@x") == "https://***@host?...");
  CHECK(redact_url("http://host:8080/org@v1/model") == "http://host:8080/org@v1/model");  // '@' in a path
  CHECK(redact_url("http://host/org@v1") == "http://host/org@v1");
  CHECK(redact_url("") == "");
  CHECK(redact_url("s3://bucket/prefix/") == "s3://bucket/prefix/");
  CHECK(redact_url("user:pw@host/m") == "***@host/m");  // no scheme
}

TEST_CASE("redact_url: a password holding an unencoded '/' does not leak") {
  for (const char* url : {"https://user:pa/ss@host/m", "https://user:a/b/c@host", "https://user:pa/ss@host/m?x=1",
                          "https://user:p/a@ss@host/m"}) {
    INFO(url);
    const std::string shown = redact_url(url);
    CHECK(shown.find("pa") == std::string::npos);
    CHECK(shown.find("a/b") == std::string::npos);
    CHECK(shown.find("ss") == std::string::npos);
    CHECK(shown.starts_with("https://***@host"));
  }
}

TEST_CASE("Secret: compares, never prints") {
  const Secret key("k3y");
  CHECK(key.reveal() == "k3y");
  CHECK(key == Secret("k3y"));
  CHECK_FALSE(key.empty());
  CHECK(Secret().empty());
  static_assert(!fmt::is_formattable<Secret>::value, "a Secret must not be formattable");
}

}  // namespace
}  // namespace tensorinit
