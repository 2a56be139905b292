// Host arenas of one model name never share a file: each temporary is unnamed (O_TMPFILE) or
// random (O_EXCL), never `<pid>` (1 for every container's init) opened with O_TRUNC.
#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "../scratch_dir.hpp"
#include "stage/shm_arena.hpp"

namespace {

namespace fs = std::filesystem;
using namespace tensorinit;
using namespace tensorinit::stage;

using tensorinit::testing::ShmDir;
using tensorinit::testing::slurp;

std::vector<std::string> names_in(const fs::path& dir) {
  std::vector<std::string> out;
  for (auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  return out;
}

// An arena of 4096 bytes under its final name.
ShmArena published(const fs::path& dir) {
  auto a = ShmArena::create(dir, "m", 0, 4096);
  REQUIRE(a);
  REQUIRE(a->publish());
  return std::move(*a);
}

void fill(const ShmArena& arena, char c) {
  const std::string bytes(arena.size(), c);
  REQUIRE(::pwrite(arena.fd(), bytes.data(), bytes.size(), 0) == static_cast<ssize_t>(bytes.size()));
}

}  // namespace

TEST_CASE("two arenas of one model name being staged at once do not share bytes") {
  ShmDir dir;
  auto a = ShmArena::create(dir.path, "m", 0, 4096);
  REQUIRE(a);
  fill(*a, 'a');
  auto b = ShmArena::create(dir.path, "m", 0, 4096);  // same name, same pid: the old code truncated a
  REQUIRE(b);
  fill(*b, 'b');
  REQUIRE(a->publish());
  CHECK(slurp(a->path()) == std::string(4096, 'a'));
  REQUIRE(b->publish());  // the later one replaces the name atomically; a's bytes stay a's
  CHECK(slurp(b->path()) == std::string(4096, 'b'));
  std::string mapped(4096, 0);
  REQUIRE(::pread(a->fd(), mapped.data(), mapped.size(), 0) == 4096);
  CHECK(mapped == std::string(4096, 'a'));
}

TEST_CASE("an arena that is not published leaves nothing behind, and no final name meanwhile") {
  ShmDir dir;
  {
    auto a = ShmArena::create(dir.path, "m", 0, 1 << 20);
    REQUIRE(a);
    fill(*a, 'x');
    CHECK(!fs::exists(a->path()));
    for (const auto& name : names_in(dir.path)) CHECK(name.find(".partial") != std::string::npos);
  }
  CHECK(names_in(dir.path).empty());
}

TEST_CASE("a published arena goes with its owner unless kept; keep(false) takes keeping back") {
  ShmDir dir;
  std::string path;
  {
    ShmArena a = published(dir.path);
    path = a.path();
    CHECK(names_in(dir.path) == std::vector<std::string>{"tensorinit-m-0"});
    a.keep();
    a.keep(false);
  }
  CHECK(!fs::exists(path));
  {
    ShmArena a = published(dir.path);
    a.keep();
  }
  CHECK(fs::exists(path));
}

TEST_CASE("stale partials of a name are removed, those of a name it is a prefix of are not") {
  ShmDir dir;
  for (const char* name : {".tensorinit-a@0.0123456789abcdef.partial", ".tensorinit-a-0@0.0123456789abcdef.partial",
                           ".tensorinit-a.0@0.0123456789abcdef.partial", "tensorinit-a-0"})
    std::ofstream(dir.path / name) << "x";
  remove_stale_partials(dir.path, "a");
  auto left = names_in(dir.path);
  std::sort(left.begin(), left.end());
  CHECK(left == std::vector<std::string>{".tensorinit-a-0@0.0123456789abcdef.partial",
                                         ".tensorinit-a.0@0.0123456789abcdef.partial", "tensorinit-a-0"});
}

TEST_CASE("too little free space is an io error naming the fix, before any file exists") {
  ShmDir dir;
  auto a = ShmArena::create(dir.path, "m", 0, uint64_t{1} << 60);
  REQUIRE(!a);
  CHECK(a.error().code == Code::io);
  CHECK(a.error().message.find("--shm-size") != std::string::npos);
  CHECK(names_in(dir.path).empty());
}

TEST_CASE("the final name appears only at publish, replacing a stale arena whole; no temporary stays") {
  ShmDir dir;
  CHECK(arena_path(dir.path, "m", 3) == (dir.path / "tensorinit-m-3").string());
  const std::string stale(8192, 's');  // a killed holder's arena, larger than the new one
  std::ofstream(dir.path / "tensorinit-m-0", std::ios::binary) << stale;
  auto a = ShmArena::create(dir.path, "m", 0, 4096);
  REQUIRE(a);
  CHECK(a->path() == arena_path(dir.path, "m", 0));
  CHECK(a->temp_path().empty());  // tmpfs has O_TMPFILE: unnamed while staging
  fill(*a, 'n');
  CHECK(slurp(a->path()) == stale);  // staging never writes through the final name
  REQUIRE(a->publish());
  CHECK(slurp(a->path()) == std::string(4096, 'n'));
  CHECK(names_in(dir.path) == std::vector<std::string>{"tensorinit-m-0"});
}

TEST_CASE("a moved arena has one owner: the moved-from one removes nothing") {
  ShmDir dir;
  std::string path;
  {
    ShmArena a = published(dir.path);
    path = a.path();
    ShmArena b = std::move(a);
    { ShmArena gone = std::move(a); }  // an empty arena's destructor
    CHECK(fs::exists(path));
    CHECK(b.size() == 4096);
    CHECK(b.fd() >= 0);
  }
  CHECK(!fs::exists(path));
}
