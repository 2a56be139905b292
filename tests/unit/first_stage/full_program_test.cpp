// Where the first stage looks for the full program, and what it says when it cannot run it.
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include "first_stage/full_program.hpp"

using namespace tensorinit;
using namespace tensorinit::first_stage;

TEST_CASE("full_program: tensorinit-full in the executable's directory, in the build tree and the package") {
  CHECK(full_program_beside("/work/build/tensorinit") == "/work/build/tensorinit-full");
  CHECK(full_program_beside("/usr/local/bin/tensorinit") == "/usr/local/bin/tensorinit-full");
  CHECK(full_program_beside("/usr/local/bin/ti") == "/usr/local/bin/tensorinit-full");
  CHECK(full_program_beside("/tensorinit") == "/tensorinit-full");
}

TEST_CASE("full_program: found from /proc/self/exe, not from the environment") {
  ::setenv("TENSORINIT_FULL_PROGRAM", "/tmp/evil", 1);
  auto path = full_program_path();
  ::unsetenv("TENSORINIT_FULL_PROGRAM");
  REQUIRE(path);
  char self[4096];
  const ssize_t n = ::readlink("/proc/self/exe", self, sizeof self);
  REQUIRE(n > 0);
  CHECK(*path == full_program_beside(std::string_view(self, static_cast<size_t>(n))));
}

TEST_CASE("full_program: a missing full program is an internal error that names it") {
  char arg0[] = "tensorinit";
  char* argv[] = {arg0, nullptr};
  char* envp[] = {nullptr};
  const Error error = exec_full_program("/nonexistent/tensorinit-full", argv, envp, 0);
  CHECK(error.code == Code::internal);
  CHECK(error.message.find("cannot run /nonexistent/tensorinit-full: No such file or directory") == 0);
}
