// The remote-source keys (s3, http) and the tensorizer secrets: parsed, defaulted, checked, and
// never quoted in an error.
#include <doctest/doctest.h>

#include <cstdlib>
#include <string>

#include "manifest/manifest.hpp"

namespace {

using namespace tensorinit;
using namespace tensorinit::manifest;

Manifest parse_ok(const std::string& text) {
  auto result = parse_text(text, "remote.yaml");
  if (!result) FAIL("unexpected error: " << result.error().message);
  return *result;
}

std::string parse_error(const std::string& text) {
  auto result = parse_text(text, "remote.yaml");
  REQUIRE_FALSE(result.has_value());
  CHECK(result.error().code == Code::bad_manifest);
  return result.error().message;
}

std::string model_with(const std::string& sources, const std::string& extra = "") {
  return "version: 1\nmodel:\n  name: m\n" + extra + "  sources:\n" + sources;
}

}  // namespace

TEST_CASE("manifest: every s3 key is parsed, with region and path_style defaults") {
  ::unsetenv("AWS_REGION");
  ::unsetenv("AWS_DEFAULT_REGION");
  ::setenv("TI_TEST_SECRET", "wJalrXUtnFEMI/K7MDENG", 1);
  Manifest m = parse_ok(model_with(R"(    - type: s3
      url: s3://bucket/prefix/
      endpoint: http://127.0.0.1:9000
      path_style: false
      access_key_id: AKIDEXAMPLE
      secret_access_key: ${TI_TEST_SECRET}
      session_token: tok
      files: [a.safetensors, sub/b.safetensors]
      ca_file: /etc/ssl/ca.pem
      connections: 12
      retries: 3
      stall_timeout: 2500ms
    - type: s3
      url: s3://other/
)"));
  const Source& s = m.model.sources.at(0);
  CHECK(s.url == "s3://bucket/prefix/");
  CHECK(s.endpoint == "http://127.0.0.1:9000");
  CHECK(s.region == "us-east-1");
  CHECK(s.path_style == false);
  CHECK(s.access_key_id == "AKIDEXAMPLE");
  CHECK(s.secret_access_key.reveal() == "wJalrXUtnFEMI/K7MDENG");
  CHECK(s.session_token.reveal() == "tok");
  CHECK(s.files == std::vector<std::string>{"a.safetensors", "sub/b.safetensors"});
  CHECK(s.ca_file == "/etc/ssl/ca.pem");
  CHECK(s.connections == 12);
  CHECK(s.retries == 3);
  CHECK(s.stall_timeout == std::chrono::milliseconds(2500));
  const Source& defaults = m.model.sources.at(1);
  CHECK_FALSE(defaults.path_style.has_value());
  CHECK(defaults.connections == 0);
  CHECK(defaults.retries == 6);
  CHECK(defaults.stall_timeout == std::chrono::seconds(10));
  CHECK(defaults.secret_access_key.empty());
}

TEST_CASE("manifest: http sources take the transport keys but not the s3 ones") {
  Manifest m = parse_ok(model_with("    - type: http\n      url: https://h/p/\n      connections: auto\n      files: [x.safetensors]\n"));
  CHECK(m.model.sources.at(0).files.size() == 1);
  CHECK(m.model.sources.at(0).connections == 0);
  std::string e = parse_error(model_with("    - type: http\n      url: https://h/p/\n      region: eu-west-1\n"));
  CHECK(e.find("remote.yaml:7:15") != std::string::npos);
  CHECK(e.find("not allowed for type http") != std::string::npos);
  e = parse_error(model_with("    - type: image\n      path: /m\n      files: [a]\n"));
  CHECK(e.find("image and volume sources take only path") != std::string::npos);
}

TEST_CASE("manifest: a source entry's keys and types are listed from util/source_type.hpp, as before") {
  CHECK(parse_error(model_with("    - type: http\n      url: https://h/p/\n      regoin: x\n"))
            .find("unknown key 'regoin' in model.sources[0] (did you mean 'region'? allowed: type, path, url, endpoint, "
                  "region, path_style, access_key_id, secret_access_key, session_token, files, ca_file, connections, "
                  "retries, stall_timeout)") != std::string::npos);
  CHECK(parse_error(model_with("    - type: gcs\n      url: gs://b/\n"))
            .find("'gcs' is not valid (image | volume | s3 | http)") != std::string::npos);
  CHECK(parse_error(model_with("    - type: s3\n      region: eu-west-1\n"))
            .find("missing required key 'url' (type s3 needs s3://bucket/prefix/)") != std::string::npos);
  CHECK(parse_error(model_with("    - type: http\n"))
            .find("missing required key 'url' (type http needs http(s)://host/prefix/)") != std::string::npos);
  CHECK(parse_error(model_with("    - type: s3\n      url: s3://u:pw@b/p/\n"))
            .find("credentials in an s3 URL are not allowed") != std::string::npos);
}

TEST_CASE("manifest: remote values are checked where they stand") {
  CHECK(parse_error(model_with("    - type: http\n      url: http://h/\n      files: [../etc/passwd]\n"))
            .find("not a relative file name") != std::string::npos);
  CHECK(parse_ok(model_with("    - type: http\n      url: http://h/\n      files: []\n")).model.sources[0].files.empty());
  CHECK(parse_error(model_with("    - type: http\n      url: http://h/\n      connections: 0\n")).find("1..256") !=
        std::string::npos);
  CHECK(parse_error(model_with("    - type: s3\n      url: s3://b/\n      path_style: maybe\n")).find("true | false") !=
        std::string::npos);
  CHECK(parse_error(model_with("    - type: s3\n      url: s3://b/\n      stall_timeout: 0s\n")).find("at least 1ms") !=
        std::string::npos);
}

TEST_CASE("manifest: a secret is never quoted in an error") {
  ::setenv("TI_TEST_SECRET", "hunter2-very-secret", 1);
  // A wrong type next to the secret: the message names the key, not its value.
  std::string e = parse_error(model_with(
      "    - type: s3\n      url: s3://b/\n      secret_access_key: [${TI_TEST_SECRET}]\n"));
  CHECK(e.find("hunter2") == std::string::npos);
  Manifest m = parse_ok(model_with("    - type: image\n      path: /m\n", "  key: ${TI_TEST_SECRET}\n  passphrase: pw\n"));
  CHECK(m.model.key.reveal() == "hunter2-very-secret");
  CHECK(m.model.passphrase.reveal() == "pw");
}
