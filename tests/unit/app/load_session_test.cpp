// One load session: it owns the model name for as long as it holds an arena or a table, writes
// the report once per outcome, and leaves nothing in the shm dir after a failure.
#include <doctest/doctest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "../scratch_dir.hpp"
#include "app/load_session.hpp"

namespace {

namespace fs = std::filesystem;
using namespace tensorinit;
using tensorinit::testing::ScratchDir;

// A shm dir of its own (TENSORINIT_SHM_DIR) and a manifest for the tiny fixture.
struct Setup {
  ScratchDir shm{"/dev/shm/tensorinit-session-test-XXXXXX"};
  ScratchDir dir;
  manifest::Manifest manifest;
  std::string report;
  explicit Setup(const std::string& name = "tiny") {
    ::setenv("TENSORINIT_SHM_DIR", shm.path.c_str(), 1);
    report = (dir.path / "report.json").string();
    auto m = manifest::parse_text("version: 1\nmodel: {name: " + name + ", sources: [{type: image, path: \"" +
                                      std::string(TENSORINIT_FIXTURES) + "/tiny-f16.safetensors\"}]}\nreport: \"" +
                                      report + "\"\n",
                                  "test.yaml");
    REQUIRE(m);
    manifest = std::move(*m);
  }
  ~Setup() { ::unsetenv("TENSORINIT_SHM_DIR"); }
  nlohmann::json read_report() const { return nlohmann::json::parse(std::ifstream(report)); }
  bool shm_empty() const { return fs::is_empty(shm.path); }
};

}  // namespace

TEST_CASE("a loaded session owns its name; a second session of it is refused and touches nothing") {
  Setup setup;
  app::LoadSession first(setup.manifest, setup.report, {});
  REQUIRE(first.load());
  REQUIRE(first.loaded());
  const std::string table = first.loaded()->table_path;
  CHECK(fs::exists(table));
  {
    app::LoadSession second(setup.manifest, "", {});
    auto refused = second.load();
    REQUIRE(!refused);
    CHECK(second.fail(refused.error()).code == Code::unavailable);
  }
  CHECK(fs::exists(table));
  CHECK(fs::exists(setup.shm.path / "tensorinit-tiny-0"));
}

TEST_CASE("a session that fails after loading removes the arena, the table and the lock, and reports once") {
  Setup setup;
  {
    app::LoadSession session(setup.manifest, setup.report, {});
    REQUIRE(session.load());
    session.succeed();
    CHECK(setup.read_report()["ok"] == true);
    session.keep();  // as before an exec
    const Error error = session.fail(Error{Code::not_found, "/no/server: command not found"});
    CHECK(error.code == Code::not_found);
    CHECK(!session.loaded());
    auto report = setup.read_report();
    CHECK(report["ok"] == false);
    CHECK(report["exit_code"] == 127);
    CHECK(report["tensors"].get<int>() > 0);  // what had been staged, for the operator
    session.fail(Error{Code::internal, "later"});  // a second failure does not rewrite it
    CHECK(setup.read_report()["exit_code"] == 127);
  }
  CHECK(setup.shm_empty());
}

TEST_CASE("a kept session leaves the arena and the table, unowned") {
  Setup setup;
  {
    app::LoadSession session(setup.manifest, "", {});
    REQUIRE(session.load());
    session.keep();
  }
  CHECK(fs::exists(setup.shm.path / "tensorinit-tiny-0"));
  CHECK(fs::exists(setup.shm.path / "tensorinit-tiny.json"));
  CHECK(!fs::exists(setup.shm.path / ".tensorinit-tiny.lock"));
  app::LoadSession next(setup.manifest, "", {});  // and the next owner replaces them
  CHECK(next.load());
}

TEST_CASE("a session that never reported reports the code the supervisor ended with") {
  Setup setup;
  {
    app::LoadSession session(setup.manifest, setup.report, {});
    REQUIRE(session.own_name());
    session.report_unless_done(143);
  }
  CHECK(setup.read_report()["exit_code"] == 143);
  CHECK(setup.shm_empty());
}
