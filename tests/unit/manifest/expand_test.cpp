// ${VAR} expansion: the pure function with a fake environment, then through the parser with the
// real process environment (variables prefixed TI_MANIFEST_TEST_ so nothing else is disturbed).
#include <doctest/doctest.h>

#include <cstdlib>
#include <map>
#include <string>

#include "manifest/expand.hpp"
#include "manifest/manifest.hpp"

namespace {

using namespace tensorinit;
using namespace tensorinit::manifest;

EnvLookup fake_env(std::map<std::string, std::string> values) {
  return [values = std::move(values)](const std::string& name) -> std::optional<std::string> {
    auto it = values.find(name);
    if (it == values.end()) return std::nullopt;
    return it->second;
  };
}

const EnvLookup kEnv = fake_env({{"HOME", "/root"}, {"EMPTY", ""}, {"N", "4"}, {"DOLLAR", "a$b"}});

std::optional<std::string> run(std::string_view text, std::string* why = nullptr) {
  ExpandError error;
  auto out = expand(text, kEnv, error);
  if (why) *why = error.message;
  return out;
}

std::string failure(std::string_view text) {
  std::string why;
  CHECK_FALSE(run(text, &why).has_value());
  return why;
}

// Sets a variable for one test and removes it after.
struct ScopedEnv {
  std::string name;
  ScopedEnv(std::string n, const char* value) : name(std::move(n)) {
    if (value) ::setenv(name.c_str(), value, 1);
    else ::unsetenv(name.c_str());
  }
  ~ScopedEnv() { ::unsetenv(name.c_str()); }
};

constexpr const char* kHead = "version: 1\nmodel:\n  name: tiny\n  sources: [{type: image, path: /m}]\n";

}  // namespace

TEST_CASE("manifest: expand substitutes, defaults and escapes") {
  CHECK(run("plain text") == "plain text");
  CHECK(run("${HOME}/models") == "/root/models");
  CHECK(run("a${N}b${N}") == "a4b4");
  CHECK(run("${MISSING:-/fallback}") == "/fallback");
  CHECK(run("${EMPTY:-used}") == "used");  // :- also replaces an empty value, as in sh
  CHECK(run("${N:-9}") == "4");
  CHECK(run("${MISSING:-}") == "");
  CHECK(run("${MISSING:-${HOME}/x}") == "/root/x");
  CHECK(run("${MISSING:-${ALSO_MISSING:-deep}}") == "deep");
  CHECK(run("$${HOME}") == "${HOME}");
  CHECK(run("cost: $$5") == "cost: $5");
  CHECK(run("$HOME and $ alone") == "$HOME and $ alone");
  CHECK(run("trailing $") == "trailing $");
  CHECK(run("${DOLLAR}") == "a$b");  // values are not expanded again
  CHECK(run("${EMPTY}") == "");
}

TEST_CASE("manifest: expand errors") {
  CHECK(failure("${MISSING}") == "environment variable MISSING is not set (set it, or write ${MISSING:-default})");
  CHECK(failure("${MISSING:-${GONE}}").find("GONE is not set") != std::string::npos);
  CHECK(failure("x ${HOME").find("unterminated '${'") != std::string::npos);
  CHECK(failure("${HOME:-abc").find("unterminated '${'") != std::string::npos);
  CHECK(failure("${HOME:-${N}").find("unterminated '${HOME:-' (missing '}')") != std::string::npos);
  CHECK(failure("${}").find("malformed reference '${}'") != std::string::npos);
  CHECK(failure("${1X}").find("malformed") != std::string::npos);
  CHECK(failure("${HOME:?no}").find("only ${NAME} and ${NAME:-default} are supported") != std::string::npos);
  CHECK(failure("${HO ME}").find("malformed") != std::string::npos);
}

TEST_CASE("manifest: expand keeps names the caller defers") {
  ExpandError error;
  ExpandOptions keep{[](std::string_view name) { return is_handoff_variable(name); }};
  auto out = expand("--dir=${TENSORINIT_MODEL_DIR} --home=${HOME} ${TENSORINIT_TABLE:-none}", kEnv, error, keep);
  REQUIRE(out.has_value());
  CHECK(*out == "--dir=${TENSORINIT_MODEL_DIR} --home=/root ${TENSORINIT_TABLE:-none}");
  auto later = fake_env({{"TENSORINIT_MODEL_DIR", "/models/tiny"}});
  CHECK(substitute_handoff_variables(*out, later) == "--dir=/models/tiny --home=/root none");
  CHECK(substitute_handoff_variables("${OTHER} $x ${", later) == "${OTHER} $x ${");
}

TEST_CASE("manifest: ${VAR} in every value of a manifest, before conversion") {
  ScopedEnv readers("TI_MANIFEST_TEST_READERS", "7");
  ScopedEnv name("TI_MANIFEST_TEST_NAME", "from-env");
  ScopedEnv unset("TI_MANIFEST_TEST_UNSET", nullptr);
  ScopedEnv dir("TENSORINIT_MODEL_DIR", nullptr);
  auto m = parse_text(
      "version: ${TI_MANIFEST_TEST_VERSION:-1}\n"
      "model:\n  name: ${TI_MANIFEST_TEST_NAME}\n"
      "  sources: [{type: image, path: \"${TI_MANIFEST_TEST_UNSET:-/models}/${TI_MANIFEST_TEST_NAME}\"}]\n"
      "stage:\n  readers: ${TI_MANIFEST_TEST_READERS}\n  chunk_size: ${TI_MANIFEST_TEST_CHUNK:-1MiB}\n"
      "  devices: [\"${TI_MANIFEST_TEST_GPU:-2}\"]\n"
      "handoff:\n  command: [server, \"--weights=${TENSORINIT_MODEL_DIR}\", \"$${TI_MANIFEST_TEST_NAME}\"]\n"
      "  grace: ${TI_MANIFEST_TEST_GRACE:-3s}\n",
      "env.yaml");
  REQUIRE_MESSAGE(m.has_value(), m.error().message);
  CHECK(m->model.name == "from-env");
  CHECK(m->model.sources[0].path == "/models/from-env");
  CHECK(m->stage.readers == 7);
  CHECK(m->stage.chunk_size == 1ull << 20);
  CHECK(m->stage.devices == std::vector<int>{2});
  CHECK(m->handoff.command ==
        std::vector<std::string>{"server", "--weights=${TENSORINIT_MODEL_DIR}", "${TI_MANIFEST_TEST_NAME}"});
  CHECK(m->handoff.grace == std::chrono::seconds(3));

  ScopedEnv auto_readers("TI_MANIFEST_TEST_READERS_AUTO", nullptr);
  auto automatic = parse_text(std::string(kHead) + "stage:\n  readers: ${TI_MANIFEST_TEST_READERS_AUTO:-auto}\n", "env.yaml");
  REQUIRE(automatic.has_value());
  CHECK(automatic->stage.readers == 0);
}

TEST_CASE("manifest: an unset variable is an error at its position") {
  ScopedEnv unset("TI_MANIFEST_TEST_UNSET", nullptr);
  auto m = parse_text(std::string(kHead) + "stage:\n  chunk_size: ${TI_MANIFEST_TEST_UNSET}\n", "env.yaml");
  REQUIRE_FALSE(m.has_value());
  CHECK(m.error().code == Code::bad_manifest);
  CHECK(m.error().message ==
        "env.yaml:6:15: stage.chunk_size: environment variable TI_MANIFEST_TEST_UNSET is not set "
        "(set it, or write ${TI_MANIFEST_TEST_UNSET:-default})");
  auto bad = parse_text(std::string(kHead) + "report: /run/${oops\n", "env.yaml");
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.error().message.starts_with("env.yaml:5:9: report: unterminated '${'"));
  // An expanded value still has to be valid.
  ScopedEnv zero("TI_MANIFEST_TEST_ZERO", "0");
  auto zero_readers = parse_text(std::string(kHead) + "stage:\n  readers: ${TI_MANIFEST_TEST_ZERO}\n", "env.yaml");
  REQUIRE_FALSE(zero_readers.has_value());
  // Quoted as written: the expanded value of a variable is never printed (it may be a secret).
  CHECK(zero_readers.error().message.starts_with(
      "env.yaml:6:12: stage.readers: '${TI_MANIFEST_TEST_ZERO}' (expanded) is not a reader count"));
}
