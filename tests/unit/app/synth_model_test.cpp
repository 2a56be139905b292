// synth writes whole models or nothing, and never replaces a file.
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "app/synth_model.hpp"

namespace {

namespace fs = std::filesystem;
using namespace tensorinit;

struct TempDir {
  fs::path path;
  TempDir() {
    std::string name = (fs::temp_directory_path() / "tensorinit-synth-test-XXXXXX").string();
    path = ::mkdtemp(name.data());
  }
  ~TempDir() { fs::remove_all(path); }
};

std::set<std::string> names(const fs::path& dir) {
  std::set<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.insert(e.path().filename().string());
  return out;
}

app::SynthOptions small(uint32_t shards) {
  app::SynthOptions o;
  o.size = 256 << 10;
  o.shards = shards;
  return o;
}

}  // namespace

TEST_CASE("synth: the files and nothing else; never over an existing file") {
  TempDir dir;
  const auto out = (dir.path / "m").string();
  REQUIRE(app::write_synth_model(small(2), out).has_value());
  CHECK(names(out) == std::set<std::string>{"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
                                            "model.safetensors.index.json"});
  CHECK((fs::status(fs::path(out) / "model.safetensors.index.json").permissions() & fs::perms::others_read) != fs::perms::none);
  // Again into the same directory: refused before anything is written.
  auto again = app::write_synth_model(small(2), out);
  REQUIRE_FALSE(again.has_value());
  CHECK(again.error().exit_code() == 64);
  CHECK(again.error().message.find("already exists") != std::string::npos);
  CHECK(names(out).size() == 3);

  // A file synth did not write (someone's model) stays as it is.
  const auto other = dir.path / "other";
  fs::create_directories(other);
  { std::ofstream(other / "model.safetensors") << "precious"; }
  auto refused = app::write_synth_model(small(1), other.string());
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().exit_code() == 64);
  std::ifstream in(other / "model.safetensors");
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(content == "precious");
}

TEST_CASE("synth: refusals leave nothing behind") {
  TempDir dir;
  const auto out = (dir.path / "m").string();
  auto too_many = app::write_synth_model(small(9999), out);  // more shards than tensors
  REQUIRE_FALSE(too_many.has_value());
  CHECK(too_many.error().exit_code() == 64);
  CHECK_FALSE(fs::exists(out));
  app::SynthOptions huge = small(1);
  huge.size = 99999ull << 40;  // 99999 TiB: no disk has it
  auto no_room = app::write_synth_model(huge, out);
  REQUIRE_FALSE(no_room.has_value());
  CHECK(no_room.error().exit_code() == 64);
  CHECK(no_room.error().message.find("does not fit") != std::string::npos);
  CHECK_FALSE(fs::exists(out));
  CHECK(app::write_synth_model(small(1), "").error().exit_code() == 64);
  CHECK(app::write_synth_model(small(1), "-").error().exit_code() == 64);
}
