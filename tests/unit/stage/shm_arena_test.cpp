// Host arenas of one model name never share a file: each temporary is unnamed (O_TMPFILE) or
// random (O_EXCL), never `<pid>` (1 for every container's init) opened with O_TRUNC.
#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "../scratch_dir.hpp"
#include "stage/shm_arena.hpp"

namespace {

namespace fs = std::filesystem;
using namespace tensorinit;
using namespace tensorinit::stage;

struct ShmDir : tensorinit::testing::ScratchDir {
  ShmDir() : ScratchDir("/dev/shm/tensorinit-arena-test-XXXXXX") {}
};

std::vector<std::string> names_in(const fs::path& dir) {
  std::vector<std::string> out;
  for (auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  return out;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
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
  CHECK(read_file(a->path()) == std::string(4096, 'a'));
  REQUIRE(b->publish());  // the later one replaces the name atomically; a's bytes stay a's
  CHECK(read_file(b->path()) == std::string(4096, 'b'));
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
    auto a = ShmArena::create(dir.path, "m", 0, 4096);
    REQUIRE(a);
    REQUIRE(a->publish());
    path = a->path();
    CHECK(names_in(dir.path) == std::vector<std::string>{"tensorinit-m-0"});
    a->keep();
    a->keep(false);
  }
  CHECK(!fs::exists(path));
  {
    auto a = ShmArena::create(dir.path, "m", 0, 4096);
    REQUIRE(a);
    REQUIRE(a->publish());
    a->keep();
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
