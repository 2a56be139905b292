// Named, timed phases: times add up per name, the timeline records each phase's end in order
// from the process start, and a phase that ran beside the others is named as such.
#include "app/phases.hpp"

#include <doctest/doctest.h>

#include <string>
#include <utility>
#include <vector>

namespace tensorinit::app {
namespace {

TEST_CASE("phases: time() records the phase and its end on the timeline; add() accumulates") {
  Phases phases;
  CHECK(phases.seconds("plan") == 0);
  CHECK(phases.last("plan") < 0);
  CHECK(phases.time("plan", [] { return 7; }) == 7);
  phases.add("plan", 1.5);
  phases.add("stage", 2.0);
  CHECK(phases.seconds("plan") >= 1.5);
  const auto all = phases.all();
  REQUIRE(all.size() == 2);
  CHECK(all[0].first == "plan");
  CHECK(all[1] == std::pair<std::string, double>{"stage", 2.0});
  const auto timeline = phases.timeline();
  REQUIRE(timeline.size() == 1);
  CHECK(timeline[0].first == "plan");
  CHECK(timeline[0].second >= phases.startup());
  CHECK(phases.last("plan") == timeline[0].second);
  CHECK(phases.total() >= timeline[0].second);
  CHECK(phases.summary().ends_with(", stage 2.000s"));
  CHECK(phases.beside().empty());
}

TEST_CASE("phases: a phase beside the others is recorded and named once") {
  Phases phases;
  phases.add_beside("cuda_init", 0.25);
  phases.add_beside("cuda_init", 0.25);
  CHECK(phases.seconds("cuda_init") == 0.5);
  CHECK(phases.beside() == std::vector<std::string>{"cuda_init"});
  CHECK(phases.timeline().empty());
}

TEST_CASE("phases: marks come in order; last() is the latest of a name; a failing phase is timed") {
  Phases phases;
  const double a = phases.mark("server_spawned");
  const double b = phases.mark("server_exited");
  const double c = phases.mark("server_spawned");
  CHECK(a <= b);
  CHECK(b <= c);
  CHECK(phases.last("server_spawned") == c);
  CHECK_THROWS(phases.time("stage", []() -> int { throw 1; }));
  CHECK(phases.timeline().back().first == "stage");
}

}  // namespace
}  // namespace tensorinit::app
