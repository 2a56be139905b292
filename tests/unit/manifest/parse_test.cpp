// The manifest parser against the contract: defaults, every key, and one test per kind of error
// with the exact position it must name.
#include <doctest/doctest.h>

#include <csignal>
#include <string>

#include "manifest/manifest.hpp"

namespace {

using namespace tensorinit;
using namespace tensorinit::manifest;

constexpr const char* kMinimal = R"(version: 1
model:
  name: tiny
  sources:
    - type: image
      path: /models/tiny
)";

Manifest parse_ok(const std::string& text) {
  auto result = parse_text(text, "test.yaml");
  if (!result) FAIL("unexpected error: " << result.error().message);
  return *result;
}

// The error message; checks the code is 78.
std::string parse_error(const std::string& text) {
  auto result = parse_text(text, "test.yaml");
  REQUIRE_FALSE(result.has_value());
  CHECK(result.error().code == Code::bad_manifest);
  CHECK(result.error().exit_code() == 78);
  return result.error().message;
}

// kMinimal with `extra` appended (top-level sections).
std::string with(const std::string& extra) { return std::string(kMinimal) + extra; }

}  // namespace

TEST_CASE("manifest: the minimal manifest gets every contract default") {
  Manifest m = parse_ok(kMinimal);
  CHECK(m.file == "test.yaml");
  CHECK(m.version == 1);
  CHECK(m.model.name == "tiny");
  CHECK(m.model.format == Format::automatic);
  REQUIRE(m.model.sources.size() == 1);
  CHECK(m.model.sources[0].type == SourceType::image);
  CHECK(m.model.sources[0].path == "/models/tiny");
  CHECK(m.model.sources[0].where == "test.yaml:5:7");
  CHECK(m.model.policy == Policy::ordered);
  CHECK(m.model.cache.empty());
  CHECK(m.model.verify == Verify::size);
  CHECK(m.stage.target == Target::host);
  CHECK(m.stage.devices == std::vector<int>{0});
  CHECK(m.stage.readers == 0);
  CHECK(m.stage.chunk_size == 16ull << 20);
  CHECK(m.stage.direct_io == DirectIo::automatic);
  CHECK(m.stage.memory_limit == 1ull << 30);
  CHECK(m.handoff.mode == HandoffMode::exec);
  CHECK(m.handoff.command.empty());
  CHECK(m.handoff.signal == SIGUSR1);
  CHECK(m.handoff.start == StartWhen::early);
  CHECK(m.handoff.grace == std::chrono::seconds(10));
  CHECK(m.report == "/run/tensorinit/report.json");
}

TEST_CASE("manifest: every key of the contract is parsed") {
  Manifest m = parse_ok(R"(version: 1
model:
  name: llama-3.1_8b
  format: tensorizer
  sources:
    - type: volume
      path: /mnt/models/tiny
    - type: s3
      url: s3://bucket/prefix/
      endpoint: http://127.0.0.1:9000
      region: us-east-1
    - type: http
      url: https://host/prefix/
    - {type: image, path: /models/tiny}
  policy: fastest
  cache: /mnt/models/.tensorinit
  verify: checksums
stage:
  target: pagecache
  devices: [0, 3]
  readers: 6
  chunk_size: 4MiB
  direct_io: off
  memory_limit: 64MiB
handoff:
  mode: signal
  command: [python3, -m, server, --port=8000]
  signal: SIGUSR2
  start: after-load
  grace: 2500ms
report: /tmp/report.json
)");
  CHECK(m.model.name == "llama-3.1_8b");
  CHECK(m.model.format == Format::tensorizer);
  REQUIRE(m.model.sources.size() == 4);
  CHECK(m.model.sources[0].type == SourceType::volume);
  CHECK(m.model.sources[0].path == "/mnt/models/tiny");
  CHECK(m.model.sources[1].type == SourceType::s3);
  CHECK(m.model.sources[1].url == "s3://bucket/prefix/");
  CHECK(m.model.sources[1].endpoint == "http://127.0.0.1:9000");
  CHECK(m.model.sources[1].region == "us-east-1");
  CHECK(m.model.sources[1].where == "test.yaml:8:7");
  CHECK(m.model.sources[2].type == SourceType::http);
  CHECK(m.model.sources[2].url == "https://host/prefix/");
  CHECK(m.model.sources[3].type == SourceType::image);
  CHECK(m.model.sources[3].where == "test.yaml:14:7");
  CHECK(m.model.policy == Policy::fastest);
  CHECK(m.model.cache == "/mnt/models/.tensorinit");
  CHECK(m.model.verify == Verify::checksums);
  CHECK(m.stage.target == Target::pagecache);
  CHECK(m.stage.devices == std::vector<int>{0, 3});
  CHECK(m.stage.readers == 6);
  CHECK(m.stage.chunk_size == 4ull << 20);
  CHECK(m.stage.direct_io == DirectIo::off);
  CHECK(m.stage.memory_limit == 64ull << 20);
  CHECK(m.handoff.mode == HandoffMode::signal);
  CHECK(m.handoff.command == std::vector<std::string>{"python3", "-m", "server", "--port=8000"});
  CHECK(m.handoff.signal == SIGUSR2);
  CHECK(m.handoff.start == StartWhen::after_load);
  CHECK(m.handoff.grace == std::chrono::milliseconds(2500));
  CHECK(m.report == "/tmp/report.json");
}

TEST_CASE("manifest: the other enum words, and the optional forms") {
  Manifest m = parse_ok(with("stage:\n  target: auto\n  direct_io: on\n  readers: auto\n"
                             "handoff:\n  mode: none\n  command: exec python3 -m server \"$$1\"\nreport: \"\"\n"));
  CHECK(m.stage.target == Target::automatic);
  CHECK(m.stage.direct_io == DirectIo::on);
  CHECK(m.stage.readers == 0);
  CHECK(m.handoff.mode == HandoffMode::none);
  CHECK(m.handoff.command == std::vector<std::string>{"/bin/sh", "-c", "exec python3 -m server \"$1\""});
  CHECK(m.report.empty());
  CHECK(parse_ok(with("report: ~\n")).report.empty());
  CHECK(parse_ok(with("stage:\n  target: cuda\n  devices: 1, 2\nhandoff:\n  mode: signal\n")).stage.devices ==
        std::vector<int>{1, 2});
  CHECK(parse_ok(with("stage:\n  direct_io: false\n")).stage.direct_io == DirectIo::off);
  CHECK(m.stage.shared_cursor == DirectIo::automatic);
  CHECK(parse_ok(with("stage:\n  shared_cursor: on\n")).stage.shared_cursor == DirectIo::on);
  CHECK(parse_ok(with("stage:\n  shared_cursor: off\n")).stage.shared_cursor == DirectIo::off);
  CHECK(parse_error(with("stage:\n  shared_cursor: maybe\n")).starts_with("test.yaml:8:18: stage.shared_cursor:"));
  // Empty sections mean "all defaults".
  Manifest empty_sections = parse_ok(with("stage:\nhandoff:\n"));
  CHECK(empty_sections.stage.chunk_size == 16ull << 20);
  CHECK(empty_sections.handoff.mode == HandoffMode::exec);
  for (auto [word, format] : {std::pair{"safetensors", Format::safetensors}, std::pair{"packed", Format::packed},
                              std::pair{"auto", Format::automatic}}) {
    std::string text = "version: 1\nmodel:\n  name: x\n  format: " + std::string(word) +
                       "\n  sources: [{type: image, path: /m}]\n";
    CHECK(parse_ok(text).model.format == format);
  }
  CHECK(parse_ok(with("  verify: none\n")).model.verify == Verify::none);
}

TEST_CASE("manifest: sizes and durations take every unit") {
  auto chunk = [](const std::string& size) {
    return parse_ok(with("stage:\n  chunk_size: " + size + "\n  memory_limit: 1TiB\n")).stage.chunk_size;
  };
  CHECK(chunk("4096") == 4096);
  CHECK(chunk("8192B") == 8192);
  CHECK(chunk("64KiB") == 64ull << 10);
  CHECK(chunk("1MiB") == 1ull << 20);
  CHECK(chunk("1GiB") == 1ull << 30);
  CHECK(chunk("0.5GiB") == 512ull << 20);
  auto limit = [](const std::string& size) {
    return parse_ok(with("stage:\n  chunk_size: 4KiB\n  memory_limit: " + size + "\n")).stage.memory_limit;
  };
  CHECK(limit("2TiB") == 2ull << 40);
  CHECK(limit("8KB") == 8000);
  CHECK(limit("3MB") == 3000000);
  CHECK(limit("2GB") == 2000000000);
  CHECK(limit("1TB") == 1000000000000);
  CHECK(limit("1.5 GiB") == 1536ull << 20);
  auto grace = [](const std::string& text) { return parse_ok(with("handoff:\n  grace: " + text + "\n")).handoff.grace; };
  CHECK(grace("250ms") == std::chrono::milliseconds(250));
  CHECK(grace("3s") == std::chrono::seconds(3));
  CHECK(grace("1.5s") == std::chrono::milliseconds(1500));
  CHECK(grace("2m") == std::chrono::minutes(2));
  CHECK(grace("0") == std::chrono::milliseconds(0));
}

TEST_CASE("manifest: signal names") {
  auto sig = [](const std::string& text) { return parse_ok(with("handoff:\n  signal: \"" + text + "\"\n")).handoff.signal; };
  CHECK(sig("SIGUSR1") == SIGUSR1);
  CHECK(sig("USR2") == SIGUSR2);
  CHECK(sig("sighup") == SIGHUP);
  CHECK(sig("SIGTERM") == SIGTERM);
  CHECK(sig("SIGRTMIN") == SIGRTMIN);
  CHECK(sig("SIGRTMIN+3") == SIGRTMIN + 3);
  CHECK(sig("RTMAX-1") == SIGRTMAX - 1);
  CHECK(sig("12") == 12);
  CHECK(sig("64") == 64);
}

TEST_CASE("manifest: bad values name file:line:col and what is allowed") {
  struct Case {
    std::string extra;
    std::string where;
    std::string says;
  };
  // kMinimal is 6 lines; what is appended starts on line 7.
  const Case cases[] = {
      {"stage:\n  target: gpu\n", "test.yaml:8:11: stage.target:", "host | pagecache | cuda | auto"},
      {"stage:\n  readers: 0\n", "test.yaml:8:12: stage.readers:", "auto or an integer 1..1024"},
      {"stage:\n  readers: -2\n", "test.yaml:8:12: stage.readers:", "'-2'"},
      {"stage:\n  readers: lots\n", "test.yaml:8:12: stage.readers:", "'lots'"},
      {"stage:\n  devices: [0, -1]\n", "test.yaml:8:16: stage.devices[1]:", "'-1' is not a device index"},
      {"stage:\n  devices: []\n", "test.yaml:8:12: stage.devices:", "no devices"},
      {"stage:\n  devices: [1, 1]\n", "test.yaml:8:12: stage.devices:", "listed twice"},
      {"stage:\n  chunk_size: 3MiB\n", "test.yaml:8:15: stage.chunk_size:", "power of two from 4KiB to 1GiB"},
      {"stage:\n  chunk_size: 2KiB\n", "test.yaml:8:15: stage.chunk_size:", "power of two"},
      {"stage:\n  chunk_size: 2GiB\n  memory_limit: 4GiB\n", "test.yaml:8:15: stage.chunk_size:", "2.00 GiB"},
      {"stage:\n  chunk_size: 16 megs\n", "test.yaml:8:15: stage.chunk_size:", "'16 megs' is not a size"},
      {"stage:\n  memory_limit: 8MiB\n", "test.yaml:8:17: stage.memory_limit:", "smaller than chunk_size"},
      {"stage:\n  chunk_size: 1GiB\n  memory_limit: 512MiB\n", "test.yaml:9:17: stage.memory_limit:", "memory_limit 512.00 MiB is smaller than chunk_size 1.00 GiB"},
      {"stage:\n  direct_io: maybe\n", "test.yaml:8:14: stage.direct_io:", "auto | on | off"},
      {"handoff:\n  grace: 10 seconds\n", "test.yaml:8:10: handoff.grace:", "'10 seconds' is not a duration"},
      {"handoff:\n  grace: -1s\n", "test.yaml:8:10: handoff.grace:", "ms, s or m"},
      {"handoff:\n  mode: fork\n", "test.yaml:8:9: handoff.mode:", "exec | signal | none"},
      {"handoff:\n  start: later\n", "test.yaml:8:10: handoff.start:", "early | after-load"},
      {"handoff:\n  signal: SIGFOO\n", "test.yaml:8:11: handoff.signal:", "SIGUSR1, USR1, SIGRTMIN+3"},
      {"handoff:\n  signal: 65\n", "test.yaml:8:11: handoff.signal:", "'65' is not a signal"},
      {"handoff:\n  signal: 0\n", "test.yaml:8:11: handoff.signal:", "'0' is not a signal"},
      {"handoff:\n  signal: KILL\n", "test.yaml:8:11: handoff.signal:", "SIGKILL cannot be caught"},
      {"handoff:\n  command: [\"\", x]\n", "test.yaml:8:12: handoff.command:", "program name"},
      {"handoff:\n  command: \"\"\n", "test.yaml:8:12: handoff.command:", "empty command"},
      {"report: [a]\n", "test.yaml:7:9: report:", "expected a value, got a list"},
      {"  policy: fast\n", "test.yaml:7:11: model.policy:", "ordered | fastest"},
      {"  verify: md5\n", "test.yaml:7:11: model.verify:", "none | size | checksums"},
      {"  format: gguf\n", "test.yaml:7:11: model.format:", "auto | safetensors | tensorizer | packed"},
      {"  cache: {a: 1}\n", "test.yaml:7:10: model.cache:", "expected a value, got a map"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.extra);
    std::string message = parse_error(with(c.extra));
    CHECK_MESSAGE(message.starts_with(c.where), message);
    CHECK_MESSAGE(message.find(c.says) != std::string::npos, message);
  }
}

TEST_CASE("manifest: wrong types are refused where they stand") {
  CHECK(parse_error(with("stage:\n  readers: {n: 2}\n")).starts_with("test.yaml:8:12: stage.readers: expected a value, got a map"));
  CHECK(parse_error(with("stage: fast\n")).starts_with("test.yaml:7:8: stage: expected a map, got a value"));
  CHECK(parse_error(with("stage:\n  devices: {a: 1}\n")).starts_with("test.yaml:8:12: stage.devices: expected a list, got a map"));
  CHECK(parse_error(with("handoff:\n  command: {a: 1}\n")).starts_with("test.yaml:8:12: handoff.command: expected a list"));
  CHECK(parse_error(with("handoff:\n  command: [[a]]\n")).starts_with("test.yaml:8:13: handoff.command[0]: expected a value, got a list"));
  CHECK(parse_error("- a\n- b\n").starts_with("test.yaml:1:1: expected a map, got a list"));
  CHECK(parse_error("version: 1\nmodel:\n  name: x\n  sources: /models/x\n")
            .starts_with("test.yaml:4:12: model.sources: expected a list, got a value"));
  CHECK(parse_error("version: 1\nmodel:\n  name: x\n  sources: [/models/x]\n")
            .starts_with("test.yaml:4:13: model.sources[0]: expected a map, got a value"));
}

TEST_CASE("manifest: unknown and duplicate keys") {
  std::string unknown = parse_error(with("stage:\n  reader: 4\n"));
  CHECK(unknown.starts_with("test.yaml:8:3: unknown key 'reader' in stage (did you mean 'readers'?"));
  CHECK(unknown.find("allowed: target, devices, readers, chunk_size, direct_io, shared_cursor, memory_limit") != std::string::npos);
  CHECK(parse_error(with("extra: 1\n")).starts_with("test.yaml:7:1: unknown key 'extra' at the top level"));
  CHECK(parse_error(with("  nmae: x\n")).starts_with("test.yaml:7:3: unknown key 'nmae' in model (did you mean 'name'?"));
  CHECK(parse_error("version: 1\nmodel:\n  name: x\n  sources:\n    - type: image\n      path: /a\n      size: 3\n")
            .starts_with("test.yaml:7:7: unknown key 'size' in model.sources[0]"));
  CHECK(parse_error(with("stage:\n  readers: 2\n  readers: 3\n"))
            .starts_with("test.yaml:9:3: stage.readers: duplicate key (first given at line 8)"));
  CHECK(parse_error(with("version: 1\n")).starts_with("test.yaml:7:1: version: duplicate key (first given at line 1)"));
  CHECK(parse_error(with("stage:\n  ? [a, b]\n  : 1\n")).starts_with("test.yaml:8:5: stage: a key must be a plain word"));
}

TEST_CASE("manifest: missing required keys name the enclosing map") {
  CHECK(parse_error("model:\n  name: x\n  sources: [{type: image, path: /m}]\n")
            .starts_with("test.yaml:1:1: missing required key 'version'"));
  CHECK(parse_error("version: 1\n").starts_with("test.yaml:1:1: missing required key 'model'"));
  CHECK(parse_error("version: 1\nmodel:\n  sources: [{type: image, path: /m}]\n")
            .starts_with("test.yaml:3:3: model: missing required key 'name'"));
  CHECK(parse_error("version: 1\nmodel:\n  name: x\n").starts_with("test.yaml:3:3: model: missing required key 'sources'"));
  CHECK(parse_error("version: 1\nmodel:\n  name: x\n  sources: []\n").starts_with("test.yaml:4:12: model.sources: no sources"));
  CHECK(parse_error("version: 1\nmodel:\n  name: x\n  sources:\n").starts_with("test.yaml:4:3: model.sources: no sources"));
  CHECK(parse_error("version: 1\nmodel:\n  name: x\n  sources:\n    - path: /m\n")
            .starts_with("test.yaml:5:7: model.sources[0]: missing required key 'type'"));
  CHECK(parse_error("version: 1\nmodel:\n  name: x\n  sources:\n    - type: volume\n")
            .starts_with("test.yaml:5:7: model.sources[0]: missing required key 'path'"));
  CHECK(parse_error("version: 1\nmodel:\n  name: x\n  sources:\n    - type: s3\n      region: eu\n")
            .starts_with("test.yaml:5:7: model.sources[0]: missing required key 'url'"));
  CHECK(parse_error("").starts_with("test.yaml: empty manifest"));
  CHECK(parse_error("# only a comment\n").starts_with("test.yaml: empty manifest"));
}

TEST_CASE("manifest: version, name and sources are validated") {
  CHECK(parse_error("version: 2\nmodel:\n  name: x\n  sources: [{type: image, path: /m}]\n")
            .starts_with("test.yaml:1:10: version: unsupported manifest version '2' (this tensorinit reads version 1)"));
  CHECK(parse_error("version: 1.0\nmodel:\n  name: x\n  sources: [{type: image, path: /m}]\n").starts_with("test.yaml:1:10: version:"));
  auto source = [](const std::string& entry) {
    return parse_error("version: 1\nmodel:\n  name: x\n  sources:\n    - " + entry + "\n");
  };
  CHECK(source("{type: disk, path: /m}").starts_with("test.yaml:5:14: model.sources[0].type: 'disk' is not valid (image | volume | s3 | http)"));
  CHECK(source("{type: image, path: /m, url: http://h/}").starts_with("test.yaml:5:36: model.sources[0].url: not allowed for type image"));
  CHECK(source("{type: image, path: \"\"}").find("empty path") != std::string::npos);
  CHECK(source("{type: s3, url: http://bucket/}").starts_with("test.yaml:5:23: model.sources[0].url: 'http://bucket/' is not an s3 URL (s3://bucket/prefix/)"));
  CHECK(source("{type: s3, url: s3:///prefix}").find("is not an s3 URL") != std::string::npos);
  CHECK(source("{type: s3, url: s3://b/, path: /m}").find("not allowed for type s3") != std::string::npos);
  CHECK(source("{type: s3, url: s3://b/, endpoint: 127.0.0.1:9000}").find("model.sources[0].endpoint: '127.0.0.1:9000' is not an endpoint URL") != std::string::npos);
  CHECK(source("{type: http, url: ftp://h/m}").find("'ftp://h/m' is not an http URL") != std::string::npos);
  CHECK(source("{type: http, url: https:///m}").find("is not an http URL") != std::string::npos);
  CHECK(source("{type: http, url: https://h/m, region: x}").find("not allowed for type http") != std::string::npos);
  // Credentials and query strings never reach a message.
  std::string secret = source("{type: http, url: \"ftp://user:hunter2@h/m?token=abc\"}");
  CHECK(secret.find("hunter2") == std::string::npos);
  CHECK(secret.find("abc") == std::string::npos);
  CHECK(secret.find("ftp://***@h/m?...") != std::string::npos);

  auto name = [](const std::string& value) {
    return parse_text("version: 1\nmodel:\n  name: " + value + "\n  sources: [{type: image, path: /m}]\n", "test.yaml");
  };
  CHECK(name("a.b_c-9").has_value());
  CHECK(name(std::string(64, 'a')).has_value());
  CHECK_FALSE(name(std::string(65, 'a')).has_value());
  CHECK_FALSE(name("Tiny").has_value());
  CHECK_FALSE(name("a/b").has_value());
  CHECK_FALSE(name("\"\"").has_value());
  CHECK(name("Tiny").error().message.starts_with("test.yaml:3:9: model.name: 'Tiny' is not a valid name ([a-z0-9._-], 1 to 64 characters, not . or ..)"));
}

TEST_CASE("manifest: exec cannot hand GPU memory to the server") {
  std::string message = parse_error(with("stage:\n  target: cuda\nhandoff:\n  mode: exec\n"));
  CHECK(message.starts_with("test.yaml:10:9: handoff.mode:"));
  CHECK(message.find("GPU memory does not survive exec (use handoff.mode: signal)") != std::string::npos);
  // With exec by default, the target is what to point at.
  CHECK(parse_error(with("stage:\n  target: cuda\n")).starts_with("test.yaml:8:11: stage.target:"));
  CHECK(parse_ok(with("stage:\n  target: cuda\nhandoff:\n  mode: signal\n")).stage.target == Target::cuda);
  CHECK(parse_ok(with("stage:\n  target: cuda\nhandoff:\n  mode: none\n")).handoff.mode == HandoffMode::none);
}

TEST_CASE("manifest: YAML syntax errors carry file:line:col") {
  std::string message = parse_error(with("stage:\n  devices: [0, 1\n  readers: 2\n"));
  CHECK(message.starts_with("test.yaml:"));
  CHECK(message.find("YAML syntax error") != std::string::npos);
  CHECK(parse_error("version: 1\n  model: x\n bad").starts_with("test.yaml:2:"));
  CHECK(parse_error("a: [1, 2\n").starts_with("test.yaml:2:1: YAML syntax error: end of sequence flow not found"));
  CHECK(parse_error("a: b: c\n").starts_with("test.yaml:1:5: YAML syntax error: illegal map value"));
  CHECK(parse_error(with("---\nversion: 1\n")).starts_with("test.yaml:"));
  CHECK(parse_error(with("---\nversion: 1\n")).find("more than one YAML document") != std::string::npos);
}
