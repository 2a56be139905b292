// The walk of a cache directory and its content hash: fixed order, nothing followed, special files
// and the reserved record name left out, and a hash that changes with any byte, name or mode.
#include "cache/content.hpp"

#include <doctest/doctest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "../scratch_dir.hpp"

namespace {

using namespace tensorinit;
using namespace tensorinit::cache;
using tensorinit::testing::ScratchDir;
namespace fs = std::filesystem;

std::string hash_of(const fs::path& dir) {
  auto tree = walk(dir.string());
  REQUIRE(tree.has_value());
  auto hash = hash_tree(dir.string(), *tree, {});
  REQUIRE(hash.has_value());
  return *hash;
}

}  // namespace

TEST_CASE("cache walk: sorted, depth first, links not followed, special files and links out skipped") {
  ScratchDir dir;
  fs::create_directories(dir.path / "b/inner");
  std::ofstream(dir.path / "b/inner/z") << "zz";
  std::ofstream(dir.path / "a") << "a";
  std::ofstream(dir.path / std::string(kRecordName)) << "not archived";
  fs::create_symlink("/etc", dir.path / "c-out");     // would be refused at restore: left out
  fs::create_symlink("../a", dir.path / "b/c-link");  // stays inside: kept
  REQUIRE(::mkfifo((dir.path / "d-fifo").c_str(), 0600) == 0);
  auto tree = walk(dir.path.string());
  REQUIRE(tree.has_value());
  std::vector<std::string> paths;
  for (const auto& e : tree->entries) paths.push_back(e.path);
  CHECK(paths == std::vector<std::string>{"a", "b", "b/c-link", "b/inner", "b/inner/z"});
  CHECK(tree->entries[2].type == EntryType::symlink);
  CHECK(tree->entries[2].link == "../a");
  CHECK(tree->bytes == 3);
  CHECK(tree->skipped == 2);
  CHECK(walk((dir.path / "absent").string()).error().code == Code::no_source);
}

TEST_CASE("cache content hash: any byte, name or mode changes it") {
  ScratchDir dir;
  std::ofstream(dir.path / "k") << "kernel";
  const std::string first = hash_of(dir.path);
  CHECK(first.size() == 64);
  CHECK(hash_of(dir.path) == first);
  std::ofstream(dir.path / "k") << "kernez";
  const std::string byte = hash_of(dir.path);
  CHECK(byte != first);
  fs::permissions(dir.path / "k", fs::perms::owner_exec, fs::perm_options::add);
  CHECK(hash_of(dir.path) != byte);
  fs::permissions(dir.path / "k", fs::perms::owner_exec, fs::perm_options::remove);
  fs::rename(dir.path / "k", dir.path / "j");
  CHECK(hash_of(dir.path) != byte);
}

TEST_CASE("cache record: written and read back; malformed ones refused") {
  Record r{.cache = "inductor", .sha256 = std::string(64, 'a'), .files = 3, .bytes = 99};
  auto back = parse_record(record_json(r));
  REQUIRE(back.has_value());
  CHECK(back->cache == "inductor");
  CHECK(back->files == 3);
  CHECK(back->bytes == 99);
  CHECK(parse_record("{").error().code == Code::bad_data);
  CHECK_FALSE(parse_record(R"({"version": 2, "cache": "x", "sha256": "", "files": 0, "bytes": 0})"));
  CHECK_FALSE(parse_record(R"({"version": 1, "cache": "x", "sha256": "short", "files": 0, "bytes": 0})"));
  CHECK_FALSE(parse_record(R"({"version": 1})"));
}
