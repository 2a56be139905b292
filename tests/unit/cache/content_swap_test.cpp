// Attacker: a server that swaps a directory of its cache for a symlink between the walk and the
// read of a save (on-ready saves run beside the server) must not make tensorinit, often root,
// archive a file from outside the cache.
#include "cache/content.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

#include "../scratch_dir.hpp"

namespace {

using namespace tensorinit;
using namespace tensorinit::cache;
using tensorinit::testing::ScratchDir;

void write(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

}  // namespace

TEST_CASE("cache read_entry: a directory swapped for a symlink after the walk is not followed") {
  ScratchDir cache, outside;
  std::filesystem::create_directory(cache.path / "sub");
  write(cache / "sub/secret", "decoy-decoy");
  write(outside / "secret", "SECRET-DATA");  // same size: only the path decides
  auto tree = walk(cache.path.string());
  REQUIRE(tree.has_value());
  REQUIRE(tree->entries.size() == 2);
  std::filesystem::remove_all(cache.path / "sub");
  std::filesystem::create_directory_symlink(outside.path, cache.path / "sub");

  std::string read;
  auto ok = read_entry(cache.path.string(), tree->entries[1], {}, [&](std::span<const std::byte> piece) -> Status {
    read.append(reinterpret_cast<const char*>(piece.data()), piece.size());
    return {};
  });
  CHECK_FALSE(ok.has_value());
  CHECK(read.find("SECRET") == std::string::npos);
  if (!ok) CHECK(ok.error().code == Code::bad_data);
  CHECK_FALSE(hash_tree(cache.path.string(), *tree, {}).has_value());
}

TEST_CASE("cache read_entry: a cache directory reached through a symlink still reads (the operator's path)") {
  ScratchDir real, links;
  std::filesystem::create_directory(real.path / "sub");
  write(real / "sub/a", "abc");
  std::filesystem::create_directory_symlink(real.path, links.path / "cache");
  auto tree = walk(links / "cache");
  REQUIRE(tree.has_value());
  std::string read;
  auto ok = read_entry(links / "cache", tree->entries[1], {}, [&](std::span<const std::byte> piece) -> Status {
    read.append(reinterpret_cast<const char*>(piece.data()), piece.size());
    return {};
  });
  CHECK(ok.has_value());
  CHECK(read == "abc");
}
