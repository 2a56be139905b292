// The app's side of staging: the manifest becomes a plain stage request with every field mapped
// (auto as nullopt, secrets carried, never printed), the paths beside the arenas, the server's
// environment, and a full stage + table of the tiny fixture through stage_weights.
#include "app/load_weights.hpp"

#include <doctest/doctest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <type_traits>
#include <utility>
#include <nlohmann/json.hpp>

#include "../scratch_dir.hpp"
#include "tiny_model.hpp"
#include "stage/cuda_startup.hpp"

namespace tensorinit::app {
namespace {

using testing::tiny_manifest;

TEST_CASE("load weights: the stage request carries the manifest, auto as nullopt") {
  manifest::Manifest m = tiny_manifest();
  stage::StageRequest auto_request = stage_request(m, "/shm");
  CHECK(auto_request.model_name == "tiny");
  CHECK(auto_request.target == stage::Target::host);
  CHECK(auto_request.devices == std::vector<int>{0});
  CHECK_FALSE(auto_request.read.readers.has_value());
  CHECK_FALSE(auto_request.read.direct_io.has_value());
  CHECK_FALSE(auto_request.read.shared_cursor.has_value());
  CHECK_FALSE(auto_request.read.chunk_size.has_value());  // the read controller sizes the reads
  CHECK(auto_request.read.memory_limit == m.stage.memory_limit);
  CHECK_FALSE(auto_request.checks.checksums);
  CHECK(auto_request.shm_dir == "/shm");
  CHECK_FALSE(auto_request.remote.has_value());
  CHECK(auto_request.cuda_startup == nullptr);

  m.stage.target = manifest::Target::automatic;
  m.stage.devices = {1, 0};
  m.stage.readers = 5;
  m.stage.chunk_size = 1 << 20;
  m.stage.chunk_size_set = true;
  m.stage.memory_limit = 64 << 20;
  m.model.verify = manifest::Verify::checksums;
  m.model.key = Secret("k3y");
  m.model.passphrase = Secret("pass");
  for (auto [mode, want] : {std::pair{manifest::DirectIo::on, true}, std::pair{manifest::DirectIo::off, false}}) {
    m.stage.direct_io = mode;
    m.stage.shared_cursor = mode;
    stage::CudaStartup none(stage::Target::host, {});
    const stage::StageRequest r = stage_request(m, "/s", &none);
    CHECK(r.target == stage::Target::automatic);
    CHECK(r.devices == std::vector<int>{1, 0});
    CHECK(r.read.readers == 5u);
    CHECK(r.read.direct_io == want);
    CHECK(r.read.shared_cursor == want);
    CHECK(r.read.chunk_size == (1u << 20));
    CHECK(r.read.memory_limit == (64u << 20));
    CHECK(r.checks.checksums);
    CHECK(r.checks.key.reveal() == "k3y");
    CHECK(r.checks.passphrase.reveal() == "pass");
    CHECK(r.cuda_startup == &none);
  }
  m.stage.target = manifest::Target::discard;
  CHECK(stage_request(m, "/s").target == stage::Target::discard);
}

TEST_CASE("load weights: every manifest target has its stage word") {
  static_assert(std::is_same_v<manifest::Target, stage::Target>);  // one enum (util/target.hpp): nothing to map
  const std::pair<manifest::Target, std::string> words[] = {{manifest::Target::host, "host"},
                                                           {manifest::Target::pagecache, "pagecache"},
                                                           {manifest::Target::cuda, "cuda"},
                                                           {manifest::Target::automatic, "auto"},
                                                           {manifest::Target::discard, "discard"}};
  for (const auto& [t, word] : words) {
    CHECK(std::string(stage::to_string(t)) == manifest::to_string(t));
    CHECK(std::string(manifest::to_string(t)) == word);
  }
}

TEST_CASE("load weights: paths beside the arenas and the server's environment") {
  const manifest::Manifest m = tiny_manifest();
  CHECK(table_path_for(m, "/x") == "/x/tensorinit-tiny.json");
  CHECK(socket_path_for(m, "/x") == "/x/tensorinit-tiny.sock");
  ::setenv("TENSORINIT_SHM_DIR", "", 1);
  CHECK(shm_dir_from_env() == "/dev/shm");
  ::setenv("TENSORINIT_SHM_DIR", "/elsewhere", 1);
  CHECK(shm_dir_from_env() == "/elsewhere");
  ::unsetenv("TENSORINIT_SHM_DIR");
  CHECK(shm_dir_from_env() == "/dev/shm");
}

TEST_CASE("load weights: decide, stage and table the tiny fixture; the table names the arena") {
  testing::ShmDir shm;
  const manifest::Manifest m = tiny_manifest();
  Phases phases;
  std::optional<plan::Decision> decision;
  {
    const LoadedWeights loaded = testing::stage_tiny(m, phases, shm.path.string(), decision);
    const plan::Decision& decided = *loaded.decision;
    CHECK(loaded.table_path == table_path_for(m, shm.path.string()));
    const auto table = nlohmann::json::parse(std::ifstream(loaded.table_path));
    CHECK(table["model"] == "tiny");
    CHECK(table["source"]["type"] == "image");
    REQUIRE(table["arenas"].size() == 1);
    CHECK(table["arenas"][0]["path"] == loaded.staged.arenas.at(0).path());
    CHECK(table["tensors"].size() == decided.index->tensors.size());
    CHECK(loaded.staged.bytes == decided.index->tensor_bytes());
    CHECK(summary_line(loaded, phases).starts_with("staged "));
    const auto env = handoff_env(m, decided, shm.path.string());
    REQUIRE(env.size() == 3);
    CHECK(env[0] == std::pair<std::string, std::string>{"TENSORINIT_TABLE", loaded.table_path});
    CHECK(env[2].second == "image");
    for (const char* phase : {"plan", "index", "stage", "table"}) CHECK(phases.seconds(phase) >= 0);
    ::unlink(loaded.table_path.c_str());
  }
  CHECK(std::filesystem::is_empty(shm.path));  // the arena went with the loaded weights (not kept)
}

}  // namespace
}  // namespace tensorinit::app
