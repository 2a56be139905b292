// `run`'s command line (init/run_flags.hpp): what both programs parse the same way.
#include <doctest/doctest.h>
#include <stdlib.h>

#include "init/run_flags.hpp"

using namespace tensorinit;
using namespace tensorinit::init;

TEST_CASE("run_flags: --grace, --group and the command; no manifest means the plain init") {
  ::unsetenv("TENSORINIT_MANIFEST");
  Args args("run", {"--grace", "2s", "--group", "--", "server", "-f", "x"});
  auto flags = parse_run_flags(args);
  REQUIRE(flags);
  CHECK_FALSE(flags->manifest);
  CHECK(flags->group);
  CHECK(flags->grace == std::chrono::milliseconds(2000));
  CHECK(flags->command == std::vector<std::string>{"server", "-f", "x"});
}

TEST_CASE("run_flags: the manifest from -f, else from TENSORINIT_MANIFEST (not when empty)") {
  Args with_f("run", {"-f", "m.yaml", "--", "s"});
  ::setenv("TENSORINIT_MANIFEST", "env.yaml", 1);
  CHECK(parse_run_flags(with_f)->manifest == "m.yaml");
  Args from_env("run", {"--", "s"});
  CHECK(parse_run_flags(from_env)->manifest == "env.yaml");
  ::setenv("TENSORINIT_MANIFEST", "", 1);
  Args empty_env("run", {"--", "s"});
  CHECK_FALSE(parse_run_flags(empty_env)->manifest);
  ::unsetenv("TENSORINIT_MANIFEST");
}

TEST_CASE("run_flags: usage errors") {
  ::unsetenv("TENSORINIT_MANIFEST");
  Args bad_grace("run", {"--grace", "soon", "--", "s"});
  auto flags = parse_run_flags(bad_grace);
  REQUIRE_FALSE(flags);
  CHECK(flags.error().code == Code::usage);
  CHECK(flags.error().message == "run: --grace 'soon' is not a duration (e.g. 10s, 500ms)");
  Args unknown("run", {"--bogus", "--", "s"});
  CHECK(parse_run_flags(unknown).error().code == Code::usage);
  Args nothing("run", {});
  auto none = parse_run_flags(nothing);
  REQUIRE(none);
  const InheritedSignals inherited{};
  auto code = run_plain_init(*none, inherited);
  REQUIRE_FALSE(code);
  CHECK(code.error().message == "run: no manifest and no COMMAND after '--': nothing to run");
}
