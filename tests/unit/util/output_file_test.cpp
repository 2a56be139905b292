// The report and the ready file go to the directory opened at start, whatever its path names later.
#include "util/output_file.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

#include "../scratch_dir.hpp"

namespace tensorinit {
namespace {

namespace fs = std::filesystem;
using testing::ScratchDir;
using testing::slurp;

TEST_CASE("output file: a directory swapped for a symlink after the open gets neither writes nor unlinks") {
  ScratchDir scratch;
  fs::create_directories(scratch / "victim");
  std::ofstream(scratch / "victim/ready") << "precious";
  const OutputFile ready(scratch / "run/ready");  // run/ created
  REQUIRE(ready.write("1"));
  fs::rename(scratch / "run", scratch / "run.old");
  fs::create_directory_symlink(scratch / "victim", scratch / "run");
  REQUIRE(ready.write("2"));
  CHECK(slurp(scratch / "run.old/ready") == "2");
  CHECK(slurp(scratch / "victim/ready") == "precious");
  ready.remove();
  CHECK_FALSE(fs::exists(scratch / "run.old/ready"));
  CHECK(slurp(scratch / "victim/ready") == "precious");
}

TEST_CASE("output file: empty writes nothing; a directory that cannot be made is an io error naming the path") {
  CHECK(OutputFile("").write("x"));
  ScratchDir scratch;
  std::ofstream(scratch / "file") << "x";
  const OutputFile under_file(scratch / "file/report.json");
  auto ok = under_file.write("y");
  REQUIRE(!ok);
  CHECK(ok.error().code == Code::io);
  CHECK(ok.error().message.find(scratch / "file/report.json") != std::string::npos);
}

}  // namespace
}  // namespace tensorinit
