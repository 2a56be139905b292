// Url: printed redacted whatever the route (fmt, JSON, redacted()); joined before the query.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "util/redact.hpp"
#include "util/url.hpp"

namespace {

using tensorinit::printable;
using tensorinit::Url;

TEST_CASE("url: every output route is redacted") {
  const Url url("https://user:hunter2@host:8443/models/tiny?X-Amz-Signature=s3cr3t&t=1#frag");
  CHECK(url.redacted() == "https://***@host:8443/models/tiny?...");
  CHECK(fmt::format("{}", url) == url.redacted());
  CHECK(fmt::format("[{:>50}]", url).find("hunter2") == std::string::npos);
  nlohmann::json j = {{"url", url}};
  CHECK(j.dump() == R"({"url":"https://***@host:8443/models/tiny?..."})");
  CHECK(url.reveal() == "https://user:hunter2@host:8443/models/tiny?X-Amz-Signature=s3cr3t&t=1#frag");
  // A newline or NUL in a URL cannot split a message line.
  CHECK(Url(std::string("http://h/a\nb\0c", 14)).redacted() == "http://h/a\\nb\\x00c");
}

TEST_CASE("url: join puts the name before the query") {
  CHECK(Url("http://h/p?token=abc").join("model.safetensors").reveal() == "http://h/p/model.safetensors?token=abc");
  CHECK(Url("http://h/p/?token=abc").join("a/b.bin").reveal() == "http://h/p/a/b.bin?token=abc");
  CHECK(Url("http://h/p/").join("x").reveal() == "http://h/p/x");
  CHECK(Url("http://h").join("x").reveal() == "http://h/x");
  CHECK(Url("http://h/p#f").join("x").reveal() == "http://h/p/x");
  CHECK(Url("http://h/p?q=1#f").join("x").reveal() == "http://h/p/x?q=1");
  CHECK(Url("s3://bucket/prefix").as_prefix().reveal() == "s3://bucket/prefix/");
  // Two files of one tokened source stay two distinct (redacted) names.
  const Url source("https://u:p@h/m?sig=1");
  CHECK(source.join("a").redacted() == "https://***@h/m/a?...");
  CHECK(source.join("a").redacted() != source.join("b").redacted());
}

TEST_CASE("url: compares and converts like the string it holds") {
  Url url = std::string("http://h/");
  CHECK(url == "http://h/");
  CHECK_FALSE(url == "http://h");
  CHECK(Url().empty());
}

TEST_CASE("printable: control characters escaped, text kept") {
  CHECK(printable("plain /path/é") == "plain /path/é");
  CHECK(printable(std::string("a\0b", 3)) == "a\\x00b");
  CHECK(printable("a\nb\tc\rd\x1b[31m\x7f") == "a\\nb\\tc\\rd\\x1b[31m\\x7f");
}

}  // namespace
