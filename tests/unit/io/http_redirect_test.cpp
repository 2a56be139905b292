// Where requests go and what they carry: redirects followed by tensorinit (signed within the
// origin, bare to another), TLS verified (a ca_file trusted, an unknown issuer refused), no
// secret in any message, and fetch_all for small whole objects.
#include <doctest/doctest.h>

#include <sys/socket.h>

#include <netinet/in.h>

#include "http_test_support.hpp"
#include "io/http_fetch.hpp"

namespace {

using namespace tensorinit;
using namespace tensorinit::testing;

constexpr const char* kQuerySecret = "QUERYSECRET1234";
constexpr const char* kHeaderSecret = "HEADERSECRET5678";
constexpr const char* kSignerSecret = "SIGNERSECRET9012";

// A loopback port with nothing listening (bound, then closed).
int closed_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

void check_no_secret(const Error& e) {
  CAPTURE(e.message);
  CHECK(e.message.find(kQuerySecret) == std::string::npos);
  CHECK(e.message.find(kHeaderSecret) == std::string::npos);
  CHECK(e.message.find(kSignerSecret) == std::string::npos);
  CHECK(e.message.find("X-Amz-Signature") == std::string::npos);
}

}  // namespace

TEST_CASE("http: redirects within the origin are signed; to another origin nothing secret goes") {
  TempDir dir;
  const std::string data = http_pattern(200'000);
  write_file(dir / "f.bin", data);
  write_file(dir / "moved.bin", data);
  FaultServer server(dir.path());
  auto client = make_client();
  auto signer = std::make_shared<TokenSigner>(kSignerSecret);
  io::HttpRequest base{"GET", server.url("/f.bin"), {{"X-Api-Key", kHeaderSecret}}};

  SUBCASE("same origin, relative Location: each hop signed, caller headers kept") {
    server.fault("/f.bin redirect to=main target=/moved.bin relative=1 times=0");
    auto f = io::HttpSource::open(client, base, signer, fast_retries());
    REQUIRE_MESSAGE(f.has_value(), f.error().message);
    CHECK(read_range(**f, 1000, 5000).value() == data.substr(1000, 5000));
    auto moved = requests_for(server, "/moved.bin");
    REQUIRE(moved.size() == 2);
    for (auto& r : moved) {
      CHECK(r["headers"].value("Authorization", "") == std::string("Bearer ") + kSignerSecret);
      CHECK(r["headers"].value("X-Api-Key", "") == kHeaderSecret);
    }
    CHECK(signer->calls.load() == 4);  // two requests, two hops each
  }
  SUBCASE("another origin (port): unsigned, without the caller's headers, Range and If-Match kept") {
    server.fault("/f.bin redirect to=alt on=main times=0");
    auto f = io::HttpSource::open(client, base, signer, fast_retries());
    REQUIRE_MESSAGE(f.has_value(), f.error().message);
    CHECK(read_range(**f, 7, 100'000).value() == data.substr(7, 100'000));
    auto requests = requests_for(server, "/f.bin");
    REQUIRE(requests.size() == 4);
    for (auto& r : requests) {
      const bool alt = r["port"] == "alt";
      CHECK(r["headers"].contains("Authorization") == !alt);
      CHECK(r["headers"].contains("X-Amz-Security-Token") == !alt);
      CHECK(r["headers"].contains("X-Api-Key") == !alt);
      CHECK(r["headers"].contains("Range"));
    }
    CHECK(requests[3]["headers"].value("If-Match", "") == (*f)->etag());
    CHECK(signer->calls.load() == 2);  // only the hops to the origin
  }
  SUBCASE("a redirect loop ends after 5 hops") {
    server.fault("/f.bin redirect to=main times=0");
    auto f = io::HttpSource::open(client, base, signer, fast_retries());
    REQUIRE_FALSE(f.has_value());
    CHECK(f.error().code == Code::unavailable);
    CHECK(f.error().message.find("refused: more than 5 redirects") != std::string::npos);
    CHECK(requests_for(server, "/f.bin").size() == 6);
  }
}

TEST_CASE("http: no query string, header value or signature appears in any error message") {
  TempDir dir;
  write_file(dir / "f.bin", http_pattern(100'000));
  FaultServer server(dir.path());
  auto client = make_client();
  auto signer = std::make_shared<TokenSigner>(kSignerSecret);
  auto options = fast_retries();
  options.retries = 1;
  options.stall_timeout = 2000ms;  // shorter, a starved server could turn a 403 into a retried stall
  const std::string query = std::string("?X-Amz-Signature=") + kQuerySecret;
  auto open = [&](const std::string& url) {
    return io::HttpSource::open(client, io::HttpRequest{"GET", url + query, {{"X-Api-Key", kHeaderSecret}}}, signer,
                                options);
  };
  std::vector<Error> errors;
  auto collect = [&](auto result, Code want) {
    REQUIRE_FALSE(result.has_value());
    CHECK(result.error().code == want);
    errors.push_back(result.error());
  };
  collect(open(server.url("/missing.bin")), Code::no_source);
  server.fault("/f.bin status status=403 code=SignatureDoesNotMatch");
  collect(open(server.url("/f.bin")), Code::denied);
  server.fault("/f.bin status status=503 times=2");
  collect(open(server.url("/f.bin")), Code::unavailable);
  server.fault("/f.bin stall seconds=5 times=2");
  collect(open(server.url("/f.bin")), Code::unavailable);
  server.fault("/f.bin reset times=2");
  collect(open(server.url("/f.bin")), Code::unavailable);
  collect(open("http://127.0.0.1:" + std::to_string(closed_port()) + "/f.bin"), Code::unavailable);
  server.fault("/f.bin redirect to=main times=0");
  collect(open(server.url("/f.bin")), Code::unavailable);
  server.clear();
  auto f = open(server.url("/f.bin"));
  REQUIRE(f.has_value());
  server.fault("/f.bin replace");
  collect(read_range(**f, 0, 10), Code::bad_data);
  REQUIRE(errors.size() == 8);
  for (const auto& e : errors) {
    check_no_secret(e);
    CHECK(e.message.starts_with("http://127.0.0.1:"));  // names the URL ...
    CHECK(e.message.find(".bin?...: ") != std::string::npos);  // ... with its query cut
  }
}

TEST_CASE("http: TLS is verified: a ca_file is trusted, an unknown issuer refused, https to http refused") {
  TempDir dir;
  const std::string data = http_pattern(50'000);
  write_file(dir / "f.bin", data);
  const std::string cert = dir / "cert.pem", key = dir / "key.pem";
  const std::string make_cert = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 "
                                "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout '" + key +
                                "' -out '" + cert + "' 2>/dev/null";
  REQUIRE_MESSAGE(std::system(make_cert.c_str()) == 0, "the openssl command-line tool is needed for this test");
  FaultServer server(dir.path(), {"--tls", cert, key});
  const std::string url = server.https_url("/f.bin");

  auto untrusted = open_url(make_client(), url);
  REQUIRE_FALSE(untrusted.has_value());
  CHECK(untrusted.error().code == Code::unavailable);
  CHECK(untrusted.error().message.find("(curl error 60)") != std::string::npos);
  CHECK(untrusted.error().message.find("gave up") == std::string::npos);  // not retried

  auto options = fast_retries();
  options.ca_file = cert;
  auto client = make_client(options);
  auto trusted = open_url(client, url, options);
  REQUIRE_MESSAGE(trusted.has_value(), trusted.error().message);
  CHECK(read_range(**trusted, 100, 40'000).value() == data.substr(100, 40'000));

  server.fault("/f.bin redirect to=alt on=main");  // to the plain-HTTP port
  auto downgraded = open_url(client, url, options);
  REQUIRE_FALSE(downgraded.has_value());
  CHECK(downgraded.error().code == Code::unavailable);
  CHECK(downgraded.error().message.find("refused: from https to http") != std::string::npos);
  CHECK(requests_for(server, "/f.bin").size() == 3);  // open, read, the redirected open: none on alt
}

TEST_CASE("http: fetch_all reads a small object whole, with a size bound") {
  TempDir dir;
  const std::string index = R"({"weight_map": {"a": "model-00001.safetensors"}})";
  write_file(dir / "index.json", index);
  FaultServer server(dir.path());
  auto client = make_client();
  server.fault("/index.json status status=503");  // retried like everything else
  auto got = io::fetch_all(*client, {"GET", server.url("/index.json"), {}}, nullptr, fast_retries(), 1 << 20);
  REQUIRE_MESSAGE(got.has_value(), got.error().message);
  CHECK(got->body == index);
  CHECK(got->etag.starts_with("\""));

  auto too_big = io::fetch_all(*client, {"GET", server.url("/index.json"), {}}, nullptr, fast_retries(), 10);
  REQUIRE_FALSE(too_big.has_value());
  CHECK(too_big.error().code == Code::bad_data);
  CHECK(too_big.error().message.find("over the 10 bytes allowed") != std::string::npos);

  auto missing = io::fetch_all(*client, {"GET", server.url("/nope.json"), {}}, nullptr, fast_retries(), 1 << 20);
  REQUIRE_FALSE(missing.has_value());
  CHECK(missing.error().code == Code::no_source);
}
