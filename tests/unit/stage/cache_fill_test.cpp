// The write-through cache: a committed file is byte-exact with its record; an uncommitted one is
// never left under the final name or with a record; a second filler is turned away by the lock.
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include "stage/cache_fill.hpp"
#include "fake_source.hpp"

namespace {

namespace fs = std::filesystem;
using namespace tensorinit;
using namespace tensorinit::stage;
using tensorinit::testing::FakeSource;
using io::read_cache_record;

struct TempDir {
  fs::path path;
  TempDir() {
    char name[] = "/tmp/tensorinit-cache-test-XXXXXX";
    path = ::mkdtemp(name);
  }
  ~TempDir() { fs::remove_all(path); }
};

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<std::string> names_in(const fs::path& dir) {
  std::vector<std::string> out;
  for (auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

TEST_CASE("cache: a fill covered partly by reads is completed from the source and recorded") {
  TempDir dir;
  auto source = std::make_shared<FakeSource>("http://h/m/a.safetensors", 3 * 1000 * 1000 + 17);
  const std::string final = (dir.path / "sub" / "a.safetensors").string();
  auto fill = CacheFill::begin(final, {source->name(), "\"etag-1\"", source->size()});
  REQUIRE(fill);
  REQUIRE(*fill);
  WriteThroughSource through(source, **fill);
  std::vector<std::byte> buf(100000);
  // Reads as the stager makes them: out of order, overlapping, not covering the start or the end.
  for (uint64_t at : {500000ull, 100ull, 2000000ull, 550000ull, 1000000ull}) REQUIRE(through.read_at(at, buf));
  CHECK_FALSE(fs::exists(final));
  REQUIRE((*fill)->commit(*source));
  fill->reset();
  const std::string bytes = read_file(final);
  REQUIRE(bytes.size() == source->size());
  CHECK(std::memcmp(bytes.data(), source->bytes().data(), bytes.size()) == 0);
  auto record = read_cache_record(final);
  REQUIRE(record);
  CHECK(record->etag == "\"etag-1\"");
  CHECK(record->size == source->size());
  CHECK(record->url == "http://h/m/a.safetensors");
  CHECK(names_in(dir.path / "sub") ==
        std::vector<std::string>{"a.safetensors", "a.safetensors.lock", "a.safetensors.tensorinit.json"});
}

TEST_CASE("cache: an abandoned fill leaves nothing trusted, and the old record is gone first") {
  TempDir dir;
  auto source = std::make_shared<FakeSource>("u", 4096);
  const std::string final = (dir.path / "a.safetensors").string();
  {  // a complete earlier version
    auto fill = CacheFill::begin(final, {"u", "v1", 4096});
    REQUIRE((*fill)->commit(*source));
  }
  REQUIRE(read_cache_record(final));
  {
    auto fill = CacheFill::begin(final, {"u", "v2", 4096});
    REQUIRE(*fill);
    CHECK(read_cache_record(final).error().code == Code::no_source);  // v1 is no longer trusted
  }  // dropped without commit: a crash or a failed load
  CHECK_FALSE(read_cache_record(final));
  CHECK(names_in(dir.path) == std::vector<std::string>{"a.safetensors", "a.safetensors.lock"});
}

TEST_CASE("cache: a failed gap read does not commit") {
  TempDir dir;
  auto source = std::make_shared<FakeSource>("u", 1 << 20);
  source->fail_at = 10;
  const std::string final = (dir.path / "a.safetensors").string();
  auto fill = CacheFill::begin(final, {"u", "e", source->size()});
  CHECK_FALSE((*fill)->commit(*source));
  fill->reset();
  CHECK_FALSE(fs::exists(final));
  CHECK_FALSE(read_cache_record(final));
}

TEST_CASE("cache: a second process is turned away while the first holds the lock; stale partials go") {
  TempDir dir;
  const std::string final = (dir.path / "a.safetensors").string();
  std::ofstream(final + ".partial.99999.0") << "left by a crashed replica";
  auto fill = CacheFill::begin(final, {"u", "e", 10});
  REQUIRE(*fill);
  CHECK_FALSE(fs::exists(final + ".partial.99999.0"));
  const pid_t child = ::fork();
  if (child == 0) {
    auto other = CacheFill::begin(final, {"u", "e", 10});
    ::_exit(other && !*other ? 0 : 1);  // flock is per open file: a second process must be refused
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  fill->reset();
  auto again = CacheFill::begin(final, {"u", "e", 10});
  CHECK(again);
  CHECK(*again);
}
