// restore and save of one cache through directory stores: first start, round trip, unchanged,
// kept, over max_size, read-only sources, several replicas saving at once.
#include "cache/startup_cache.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <thread>

#include "cache/unpack.hpp"
#include "../scratch_dir.hpp"

namespace {

using namespace tensorinit;
using namespace tensorinit::cache;
using tensorinit::testing::ScratchDir;
namespace fs = std::filesystem;

void write(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path) << text;
}

CacheSpec spec_for(const fs::path& dir, const fs::path& volume, bool writable = true) {
  return {.name = "inductor", .path = dir.string(), .stores = {directory_store(volume.string(), "inductor", writable)}};
}

std::vector<std::string> names_in(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

TEST_CASE("cache: a first start finds no archive and gets an empty directory") {
  ScratchDir root;
  auto o = restore(spec_for(root.path / "deep/cache", root.path / "volume"), {});
  CHECK(o.state == State::missing);
  CHECK(o.message.find("first start") != std::string::npos);
  CHECK(directory_is_empty((root.path / "deep/cache").string()));
}

TEST_CASE("cache: saved, then restored byte for byte; unchanged is not saved again") {
  ScratchDir root;
  const fs::path dir = root.path / "cache", volume = root.path / "volume";
  write(dir / "a/kernel.so", "kernel bytes");
  write(dir / "index.json", "{\"k\": 1}");
  fs::create_directories(dir / "empty");
  fs::create_symlink("a/kernel.so", dir / "latest");
  auto saved = save(spec_for(dir, volume), "", {});
  REQUIRE_MESSAGE(saved.state == State::saved, saved.message);
  CHECK(saved.where == (volume / "inductor.tar.zst").string());
  CHECK(names_in(volume) == std::vector<std::string>{"inductor.tar.zst"});  // no partial left

  const fs::path again = root.path / "again";
  auto restored = restore(spec_for(again, volume), {});
  REQUIRE_MESSAGE(restored.state == State::restored, restored.message);
  CHECK(restored.sha256 == saved.sha256);
  CHECK(testing::slurp((again / "a/kernel.so").string()) == "kernel bytes");
  CHECK(testing::slurp((again / "latest").string()) == "kernel bytes");
  CHECK(fs::is_directory(again / "empty"));

  auto unchanged = save(spec_for(again, volume), restored.sha256, {});
  CHECK(unchanged.state == State::unchanged);
  write(again / "new.so", "more");
  auto changed = save(spec_for(again, volume), restored.sha256, {});
  CHECK(changed.state == State::saved);
  CHECK(changed.sha256 != saved.sha256);
}

TEST_CASE("cache: a directory that is not empty is kept as it is") {
  ScratchDir root;
  write(root.path / "cache/mine", "user data");
  write(root.path / "cache2/x", "1");
  REQUIRE(save(spec_for(root.path / "cache2", root.path / "volume"), "", {}).state == State::saved);
  auto o = restore(spec_for(root.path / "cache", root.path / "volume"), {});
  CHECK(o.state == State::kept);
  CHECK(testing::slurp((root.path / "cache/mine").string()) == "user data");
  CHECK_FALSE(fs::exists(root.path / "cache/x"));
}

TEST_CASE("cache: over max_size is not saved; read-only sources are skipped") {
  ScratchDir root;
  write(root.path / "cache/big", std::string(2000, 'b'));
  CacheSpec spec = spec_for(root.path / "cache", root.path / "volume");
  spec.max_size = 1000;
  auto over = save(spec, "", {});
  CHECK(over.state == State::refused);
  CHECK_FALSE(fs::exists(root.path / "volume"));

  CacheSpec ro = spec_for(root.path / "cache", root.path / "image", false);
  auto no_target = save(ro, "", {});
  CHECK(no_target.state == State::failed);
  CHECK(no_target.message.find("read only") != std::string::npos);
  ro.stores.push_back(directory_store((root.path / "volume").string(), "inductor", true));
  CHECK(save(ro, "", {}).where == (root.path / "volume/inductor.tar.zst").string());
}

TEST_CASE("cache: three replicas saving at once leave one whole archive") {
  ScratchDir root;
  const fs::path volume = root.path / "volume";
  std::vector<fs::path> dirs;
  for (int i = 0; i < 3; ++i) {
    dirs.push_back(root.path / ("replica" + std::to_string(i)));
    for (int f = 0; f < 20; ++f) write(dirs.back() / ("k" + std::to_string(f)), std::string(50000, char('a' + i)));
  }
  std::vector<Outcome> outcomes(3);
  {
    std::vector<std::jthread> threads;
    for (int i = 0; i < 3; ++i) threads.emplace_back([&, i] { outcomes[i] = save(spec_for(dirs[i], volume), "", {}); });
  }
  for (const auto& o : outcomes) CHECK_MESSAGE(o.state == State::saved, o.message);
  CHECK(names_in(volume) == std::vector<std::string>{"inductor.tar.zst"});
  auto o = restore(spec_for(root.path / "fresh", volume), {});
  REQUIRE_MESSAGE(o.state == State::restored, o.message);
  const std::string first = testing::slurp((root.path / "fresh/k0").string());
  REQUIRE(first.size() == 50000);
  for (int f = 1; f < 20; ++f)  // every file from the same replica
    CHECK(testing::slurp((root.path / ("fresh/k" + std::to_string(f))).string()) == first);
}

TEST_CASE("cache: a stopped save publishes nothing") {
  ScratchDir root;
  write(root.path / "cache/a", "x");
  std::stop_source stop;
  stop.request_stop();
  auto o = save(spec_for(root.path / "cache", root.path / "volume"), "", stop.get_token());
  CHECK(o.state == State::stopped);
  CHECK(names_in(root.path / "volume").empty());
}

TEST_CASE("cache: a restore stopped by a signal leaves the directory empty") {
  ScratchDir root;
  write(root.path / "cache/a", std::string(100000, 'a'));
  REQUIRE(save(spec_for(root.path / "cache", root.path / "volume"), "", {}).state == State::saved);
  std::stop_source stop;
  stop.request_stop();
  auto o = restore(spec_for(root.path / "fresh", root.path / "volume"), stop.get_token());
  CHECK(o.state == State::stopped);
  CHECK(directory_is_empty((root.path / "fresh").string()));
}

TEST_CASE("cache: each outcome state has the name the logs and the report carry") {
  CHECK(to_string(State::restored) == "restored");
  CHECK(to_string(State::missing) == "missing");
  CHECK(to_string(State::kept) == "kept");
  CHECK(to_string(State::saved) == "saved");
  CHECK(to_string(State::unchanged) == "unchanged");
  CHECK(to_string(State::refused) == "refused");
  CHECK(to_string(State::failed) == "failed");
  CHECK(to_string(State::stopped) == "stopped");
}
