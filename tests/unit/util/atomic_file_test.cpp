// Files that readers trust appear whole or not at all: the content lands under its name by rename
// (a reader of the old name sees the old file whole), the directory is created, and a write that
// cannot happen is Code::io with nothing left behind.
#include "util/atomic_file.hpp"

#include <doctest/doctest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "../scratch_dir.hpp"

namespace tensorinit {
namespace {

namespace fs = std::filesystem;
using testing::ScratchDir;
using testing::slurp;

size_t entries(const fs::path& dir) {
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : fs::recursive_directory_iterator(dir)) ++n;
  return n;
}

TEST_CASE("atomic file: written whole under its name, replacing the old file; no temporary stays") {
  ScratchDir dir;
  const std::string path = dir / "sub/dir/table.json";  // directories created
  REQUIRE(write_file_atomically(path, "first"));
  CHECK(slurp(path) == "first");
  std::ifstream old_reader(path);  // holds the first file open across the replacement
  REQUIRE(write_file_atomically(path, std::string(1 << 20, 'x')));
  CHECK(slurp(path) == std::string(1 << 20, 'x'));
  CHECK(std::string(std::istreambuf_iterator<char>(old_reader), {}) == "first");
  CHECK(entries(dir.path) == 3);  // sub, sub/dir, table.json
  auto read = read_whole_file(path, "table");
  REQUIRE(read);
  CHECK(read->size() == 1 << 20);
}

TEST_CASE("atomic file: what cannot be written is an io error naming the path, leaving nothing") {
  ScratchDir dir;
  const std::string file = dir / "file";
  std::ofstream(file) << "x";
  auto under_file = write_file_atomically(file + "/table.json", "y");  // a directory that is a file
  REQUIRE(!under_file);
  CHECK(under_file.error().code == Code::io);
  CHECK(under_file.error().message.find(file + "/table.json") != std::string::npos);
  auto over_dir = write_file_atomically(dir.path.string(), "y");  // a name that is a directory
  REQUIRE(!over_dir);
  CHECK(over_dir.error().code == Code::io);
  CHECK(entries(dir.path) == 1);
  auto missing = read_whole_file(dir / "missing", "report");
  REQUIRE(!missing);
  CHECK(missing.error().code == Code::io);
  CHECK(missing.error().message == "cannot read the report " + (dir / "missing"));
}

TEST_CASE("atomic file: a FIFO under the name is refused at once, not waited on (no writer ever comes)") {
  ScratchDir dir;
  const std::string fifo = dir / "table.json";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  auto read = read_whole_file(fifo, "tensor table");  // hung in open() before
  REQUIRE(!read);
  CHECK(read.error().code == Code::io);
  CHECK(read.error().message == "cannot read the tensor table " + fifo + ": not a regular file");
}

TEST_CASE("atomic file: temporary suffixes are 16 hex digits and do not repeat") {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    const std::string s = random_suffix();
    CHECK(s.size() == 16);
    CHECK(s.find_first_not_of("0123456789abcdef") == std::string::npos);
    seen.insert(s);
  }
  CHECK(seen.size() == 100);
}

TEST_CASE("atomic file: remove_stale_temporaries removes a dead writer's temporary of that name only") {
  ScratchDir dir;
  const std::string path = dir / "tensorinit-m.json";
  const std::set<std::string> kept = {
      "tensorinit-m.json",                                      // the file itself
      "tensorinit-m.json.0123456789abcde.tmp",                  // 15 digits: not ours
      "tensorinit-m.json.0123456789ABCDEF.tmp",                 // not random_suffix's digits
      "tensorinit-m.json.x.json.0123456789abcdef.tmp",          // model "m.json.x"'s temporary
      "tensorinit-m.jsonx0123456789abcdef.tmp",                 // no dot
      "tensorinit-m.json.0123456789abcdef.tmp.json",            // model "m.json.<hex>.tmp"'s table
      "tensorinit-m.json.0123456789abcdef.tmpx"};
  for (const auto& name : kept) std::ofstream(dir / name.c_str()) << "x";
  std::ofstream(dir / "tensorinit-m.json.0123456789abcdef.tmp") << "litter";
  std::ofstream(dir / "tensorinit-m.json.fedcba9876543210.tmp") << "litter";
  remove_stale_temporaries(path);
  std::set<std::string> left;
  for (const auto& e : fs::directory_iterator(dir.path)) left.insert(e.path().filename().string());
  CHECK(left == kept);
}

}  // namespace
}  // namespace tensorinit
