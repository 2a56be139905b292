// spawn: the child runs the command with the overrides in its environment, in a process group of
// its own, with the mask it was started with (nothing blocked here) and no descriptor of ours
// beyond 0, 1, 2; a command that cannot run is 127 (not found) or 126 (not executable), named,
// with the child already reaped.
#include "init/spawn.hpp"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>

#include "../scratch_dir.hpp"

namespace tensorinit::init {
namespace {

InheritedSignals nothing_blocked() {
  InheritedSignals inherited;
  sigemptyset(&inherited.mask);
  sigemptyset(&inherited.ignored);
  return inherited;
}

int wait_for(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

TEST_CASE("spawn: environment, own process group, only 0-2 open, exit status reaches the parent") {
  testing::ScratchDir dir;
  const std::string out = dir / "out";
  const int stray = ::open("/dev/null", O_RDONLY);  // not close-on-exec: must not reach the child
  REQUIRE(stray > 2);
  auto pid = spawn({.argv = {"sh", "-c", "echo \"$TI_SPAWN_TEST\" > " + out + "; ls /proc/self/fd >> " + out +
                                             "; read -r _ _ _ _ pgid _ < /proc/$$/stat; [ \"$pgid\" = $$ ] && exit 7 || exit 8"},
                    .env = {{"TI_SPAWN_TEST", "over ridden"}}},
                   nothing_blocked());
  ::close(stray);
  REQUIRE_MESSAGE(pid.has_value(), pid.error().message);
  CHECK(::getpgid(*pid) == *pid);
  const int status = wait_for(*pid);
  const std::string text = testing::slurp(out);
  CHECK(text.starts_with("over ridden\n"));
  // ls's own listing descriptor shows as 3: anything above is a leak.
  CHECK(text.find("\n4\n") == std::string::npos);
  CHECK(status == 7);  // the shell saw itself lead its own group
}

TEST_CASE("spawn: a missing command is 127 and a non-executable file 126, both named") {
  auto missing = spawn({.argv = {"tensorinit-no-such-command-xyz"}}, nothing_blocked());
  REQUIRE_FALSE(missing.has_value());
  CHECK(missing.error().code == Code::not_found);
  CHECK(missing.error().message.find("tensorinit-no-such-command-xyz") != std::string::npos);

  testing::ScratchDir dir;
  const std::string script = dir / "not-executable.sh";
  { std::ofstream(script) << "#!/bin/sh\nexit 0\n"; }
  ::chmod(script.c_str(), 0644);
  auto denied = spawn({.argv = {script}}, nothing_blocked());
  REQUIRE_FALSE(denied.has_value());
  CHECK(denied.error().code == Code::not_executable);
  CHECK(denied.error().message.find(script) != std::string::npos);
}

}  // namespace
}  // namespace tensorinit::init
