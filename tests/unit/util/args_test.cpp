// The argument scanner: options end at "--"; odd words are clean usage errors.
#include <doctest/doctest.h>

#include "util/args.hpp"

namespace {

using tensorinit::Args;

}  // namespace

TEST_CASE("args: flags and options are not taken from the server's command line") {
  Args args("run", {"-f", "m.yaml", "--", "server", "--help", "-f", "x"});
  CHECK_FALSE(args.flag("--help"));
  auto f = args.option("-f");
  REQUIRE(f.has_value());
  CHECK(**f == "m.yaml");
  CHECK(args.after_double_dash() == std::vector<std::string>{"server", "--help", "-f", "x"});
}

TEST_CASE("args: positionals after -- may start with '-'") {
  Args args("inspect", {"--json", "--", "-odd-name"});
  CHECK(args.flag("--json"));
  auto rest = args.positionals(1, 1);
  REQUIRE(rest.has_value());
  CHECK(rest->front() == "-odd-name");
  Args dash("inspect", {"-"});
  CHECK(dash.positionals(1, 1).value().front() == "-");
}

TEST_CASE("args: odd words are usage errors, quoted on one line") {
  Args unknown("synth", {"--bogus\nflag"});
  auto rest = unknown.positionals(0, 1);
  REQUIRE_FALSE(rest.has_value());
  CHECK(rest.error().exit_code() == 64);
  CHECK(rest.error().message == "synth: unknown option '--bogus\\nflag' (see --help)");
  Args missing("synth", {"--size"});
  CHECK(missing.option("--size").error().exit_code() == 64);
  Args extra("pack", {"a", "b", "c"});
  CHECK(extra.positionals(2, 2).error().message == "pack: unexpected argument 'c'");
  Args empty_value("synth", {"--size="});
  CHECK(empty_value.option("--size").value().value() == "");
}
