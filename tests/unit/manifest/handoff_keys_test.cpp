// handoff.ready and handoff.restart: defaults, every form, and the errors with their positions.
#include <doctest/doctest.h>

#include <string>

#include "manifest/manifest.hpp"

namespace {

using namespace tensorinit;
using namespace tensorinit::manifest;

std::string with_handoff(const std::string& handoff) {
  return "version: 1\nmodel: {name: tiny, sources: [{type: image, path: /m}]}\nhandoff:\n" + handoff;
}

Manifest parse_ok(const std::string& handoff) {
  auto result = parse_text(with_handoff(handoff), "t.yaml");
  if (!result) FAIL("unexpected error: " << result.error().message);
  return *result;
}

std::string parse_error(const std::string& handoff) {
  auto result = parse_text(with_handoff(handoff), "t.yaml");
  REQUIRE_FALSE(result);
  CHECK(result.error().exit_code() == 78);
  return result.error().message;
}

}  // namespace

TEST_CASE("handoff.ready and restart default to none and never") {
  const Manifest m = parse_ok("  mode: signal\n");
  CHECK(m.handoff.ready == ReadyProbe::none);
  CHECK(m.handoff.ready_timeout == std::chrono::minutes(10));
  CHECK_FALSE(m.handoff.ready_file.has_value());
  CHECK(m.handoff.restart == Restart::never);
  CHECK(m.handoff.max_restarts == 5);
  CHECK(m.handoff.restart_delay == std::chrono::seconds(1));
  CHECK(parse_ok("  mode: exec\n  ready: none\n").handoff.ready == ReadyProbe::none);
}

TEST_CASE("handoff.ready: http, tcp, socket") {
  Manifest m = parse_ok("  mode: signal\n  ready: {http: 'http://127.0.0.1:8000/health?x=1#f', timeout: 90s}\n");
  CHECK(m.handoff.ready == ReadyProbe::http);
  CHECK(m.handoff.ready_host == "127.0.0.1");
  CHECK(m.handoff.ready_port == "8000");
  CHECK(m.handoff.ready_path == "/health?x=1");
  CHECK(m.handoff.ready_timeout == std::chrono::seconds(90));
  m = parse_ok("  mode: signal\n  ready: {http: 'http://localhost'}\n");
  CHECK(m.handoff.ready_port == "80");
  CHECK(m.handoff.ready_path == "/");
  m = parse_ok("  mode: signal\n  ready: {tcp: '[::1]:9000', file: /run/r}\n");
  CHECK(m.handoff.ready == ReadyProbe::tcp);
  CHECK(m.handoff.ready_host == "::1");
  CHECK(m.handoff.ready_port == "9000");
  CHECK(m.handoff.ready_file == std::optional<std::string>("/run/r"));
  m = parse_ok("  mode: signal\n  ready: {socket: true, file: ''}\n");
  CHECK(m.handoff.ready == ReadyProbe::socket);
  CHECK(m.handoff.ready_file == std::optional<std::string>(""));
}

TEST_CASE("handoff.ready: bad values name their position") {
  CHECK(parse_error("  mode: signal\n  ready: {http: 'https://h/'}\n").starts_with("t.yaml:5:17:"));
  CHECK(parse_error("  mode: signal\n  ready: {http: 'http://u:p@h/'}\n").find("credentials") != std::string::npos);
  CHECK(parse_error("  mode: signal\n  ready: {http: 'http://h:99999/'}\n").find("host and port") != std::string::npos);
  CHECK(parse_error("  mode: signal\n  ready: {tcp: 'localhost'}\n").find("HOST:PORT") != std::string::npos);
  CHECK(parse_error("  mode: signal\n  ready: {tcp: 'h:1', socket: true}\n").find("only one of") != std::string::npos);
  CHECK(parse_error("  mode: signal\n  ready: {timeout: 0s}\n").find("longer than 0") != std::string::npos);
  CHECK(parse_error("  mode: signal\n  ready: {ttl: 1s}\n").starts_with("t.yaml:5:"));
  CHECK(parse_error("  mode: signal\n  ready: soon\n").starts_with("t.yaml:5:10:"));
}

TEST_CASE("handoff.restart: values, and exec or none mode refused") {
  const Manifest m = parse_ok("  mode: signal\n  restart: on-failure\n  max_restarts: 2\n  restart_delay: 200ms\n");
  CHECK(m.handoff.restart == Restart::on_failure);
  CHECK(m.handoff.max_restarts == 2);
  CHECK(m.handoff.restart_delay == std::chrono::milliseconds(200));
  CHECK(m.handoff.restart_delay_max == std::chrono::seconds(30));
  CHECK(parse_ok("  mode: signal\n  restart: always\n  restart_delay: 1m\n").handoff.restart_delay_max ==
        std::chrono::minutes(1));
  CHECK(parse_error("  mode: signal\n  restart: sometimes\n").starts_with("t.yaml:5:12:"));
  CHECK(parse_error("  mode: signal\n  max_restarts: -1\n").starts_with("t.yaml:5:17:"));
  const std::string exec = parse_error("  mode: exec\n  restart: always\n");
  CHECK(exec.starts_with("t.yaml:4:9:"));
  CHECK(exec.find("handoff.restart") != std::string::npos);
  CHECK(exec.find("handoff.mode: signal") != std::string::npos);
  CHECK(parse_error("  restart: always\n").starts_with("t.yaml:4:3:"));  // mode exec by default: the map
  CHECK(parse_error("  mode: none\n  ready: {tcp: 'h:1'}\n").find("starts no server") != std::string::npos);
}
