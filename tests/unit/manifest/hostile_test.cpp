// Manifests written to hurt: deep nesting, huge expansions, names that climb out of their
// directory, NULs and control characters. Each is a clean 78 with file:line:col, never a crash.
#include <doctest/doctest.h>

#include <map>
#include <string>

#include "manifest/expand.hpp"
#include "manifest/manifest.hpp"

namespace {

using namespace tensorinit;
using namespace tensorinit::manifest;

std::string error_of(const std::string& text) {
  auto result = parse_text(text, "m.yaml");
  REQUIRE_FALSE(result.has_value());
  CHECK(result.error().exit_code() == 78);
  return result.error().message;
}

std::string with_name(const std::string& name) {
  return "version: 1\nmodel:\n  name: " + name + "\n  sources: [{type: image, path: /m}]\n";
}

std::string with_path(const std::string& path) {
  return "version: 1\nmodel:\n  name: tiny\n  sources: [{type: image, path: " + path + "}]\n";
}

EnvLookup env_of(std::map<std::string, std::string> values) {
  return [values = std::move(values)](const std::string& name) -> std::optional<std::string> {
    auto it = values.find(name);
    if (it == values.end()) return std::nullopt;
    return it->second;
  };
}

}  // namespace

TEST_CASE("manifest: model.name '.' and '..' are refused (the cache went into model.cache's parent)") {
  CHECK(error_of(with_name("..")).starts_with("m.yaml:3:9: model.name: '..' is not a valid name"));
  CHECK(error_of(with_name("\".\"")).starts_with("m.yaml:3:9: model.name: '.' is not a valid name"));
  CHECK(parse_text(with_name("..a"), "m.yaml").has_value());
  CHECK(parse_text(with_name("a..b"), "m.yaml").has_value());
}

TEST_CASE("manifest: ${U:-${U:-...}} nested 20000 deep is a 78, not a stack overflow") {
  std::string deep;
  for (int i = 0; i < 20000; ++i) deep += "${TI_HOSTILE_UNSET:-";
  deep += "x";
  deep += std::string(20000, '}');
  std::string message = error_of(with_path("\"" + deep + "\""));
  CHECK(message.starts_with("m.yaml:4:33: model.sources[0].path: ${NAME:-default} nested more than 32 deep"));
  // As deep as allowed still expands.
  std::string ok;
  for (unsigned i = 0; i < kMaxExpandDepth; ++i) ok += "${TI_HOSTILE_UNSET:-";
  ok += "/m" + std::string(kMaxExpandDepth, '}');
  auto parsed = parse_text(with_path("\"" + ok + "\""), "m.yaml");
  REQUIRE(parsed.has_value());
  CHECK(parsed->model.sources[0].path == "/m");
}

TEST_CASE("manifest: one value expands to at most 1 MiB") {
  const auto env = env_of({{"BIG", std::string(100 << 10, 'a')}});
  ExpandError error;
  std::string refs;
  for (int i = 0; i < 11; ++i) refs += "${BIG}";
  CHECK_FALSE(expand(refs, env, error).has_value());
  CHECK(error.message == "the value expands to more than 1048576 bytes");
  error = {};
  CHECK(expand("${BIG}${BIG}", env, error).value().size() == 200u << 10);
  // Through defaults too.
  error = {};
  CHECK_FALSE(expand("${NONE:-" + refs + "}", env, error).has_value());
}

TEST_CASE("manifest: a NUL in a value is refused; control characters in messages are escaped") {
  std::string message = error_of(with_path("\"/models/a\\0b\""));
  CHECK(message.starts_with("m.yaml:4:33: model.sources[0].path: a NUL character (\\0) in a value"));
  CHECK(message.find('\0') == std::string::npos);
  message = error_of(with_name("\"bad\\nname\\x1b\""));
  CHECK(message.find("'bad\\nname\\x1b' is not a valid name") != std::string::npos);
  CHECK(message.find('\n') == std::string::npos);
  CHECK(message.find('\x1b') == std::string::npos);
  // An unknown key with a newline in it.
  message = error_of(with_name("tiny\n  \"na\\nme\": 1"));
  CHECK(message.find("unknown key 'na\\nme'") != std::string::npos);
  CHECK(message.find('\n') == std::string::npos);
}

TEST_CASE("manifest: a file that cannot be a manifest is a 78 naming it, escaped") {
  auto result = parse_file("/nonexistent/a\nb.yaml");
  REQUIRE_FALSE(result.has_value());
  CHECK(result.error().exit_code() == 78);
  CHECK(result.error().message.starts_with("/nonexistent/a\\nb.yaml: cannot open manifest"));
  CHECK(parse_file("").error().exit_code() == 78);
  CHECK(parse_file("/").error().exit_code() == 78);
}

TEST_CASE("manifest: a wrong value from ${VAR} is quoted as written, never expanded") {
  ::setenv("TI_HOSTILE_SECRET", "Hunter2!", 1);
  std::string message = error_of(with_name("tiny") + "stage: {readers: \"${TI_HOSTILE_SECRET}\"}\n");
  CHECK(message.find("'${TI_HOSTILE_SECRET}' (expanded) is not a reader count") != std::string::npos);
  CHECK(message.find("Hunter2") == std::string::npos);
  message = error_of(with_name("\"${TI_HOSTILE_SECRET:-x}\""));
  CHECK(message.find("Hunter2") == std::string::npos);
  message = error_of(with_name("tiny") + "stage: {chunk_size: \"${TI_HOSTILE_SECRET}\", direct_io: \"${TI_HOSTILE_SECRET}\"}\n");
  CHECK(message.find("Hunter2") == std::string::npos);
  ::unsetenv("TI_HOSTILE_SECRET");
  // Without a reference, the value itself is quoted.
  CHECK(error_of(with_name("tiny") + "stage: {readers: many}\n").find("'many' is not a reader count") != std::string::npos);
}

TEST_CASE("manifest: credentials in an s3 url or endpoint are refused, never quoted") {
  auto source = [](const std::string& entry) {
    return error_of("version: 1\nmodel:\n  name: tiny\n  sources: [" + entry + "]\n");
  };
  std::string message = source("{type: s3, url: \"s3://AKID:hunter2@bucket/p/\"}");
  CHECK(message.find("credentials in an s3 URL are not allowed") != std::string::npos);
  CHECK(message.find("'s3://***@bucket/p/'") != std::string::npos);
  CHECK(message.find("hunter2") == std::string::npos);
  message = source("{type: s3, url: \"s3://bucket/\", endpoint: \"http://k:hunter2@127.0.0.1:9000\"}");
  CHECK(message.find("credentials in the endpoint are not allowed") != std::string::npos);
  CHECK(message.find("hunter2") == std::string::npos);
  // http userinfo is allowed (basic auth), and parsed as written.
  auto parsed = parse_text("version: 1\nmodel:\n  name: tiny\n  sources: [{type: http, url: \"http://u:hunter2@h/m?t=1\"}]\n", "m.yaml");
  REQUIRE(parsed.has_value());
  CHECK(parsed->model.sources[0].url.reveal() == "http://u:hunter2@h/m?t=1");
  CHECK(parsed->model.sources[0].url.redacted() == "http://***@h/m?...");
}
