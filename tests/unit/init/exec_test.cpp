// exec_in_place driven for real: each case forks a child that blocks its signals as main does,
// queues signals, then execs a tiny program (sh, grep) in place; the parent reads its exit status.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

#include "../scratch_dir.hpp"
#include "init/exec.hpp"

namespace fs = std::filesystem;
using tensorinit::init::ExecRequest;
using tensorinit::init::block_all_signals;
using tensorinit::init::exec_in_place;

namespace {

using Scratch = tensorinit::testing::ScratchDir;
using tensorinit::testing::slurp;

// Forks; the child runs `setup` (before main's block_all_signals: the "inherited" state), blocks,
// runs `queue`, then exec_in_place(request); if that returns, the child exits with its code.
// Returns the child's wait status.
int exec_child(const ExecRequest& request, const std::function<void()>& setup, const std::function<void()>& queue) {
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    setup();
    const auto inherited = block_all_signals();
    queue();
    const auto error = exec_in_place(request, inherited);
    ::_exit(error.exit_code());
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  return status;
}

void nothing() {}

// Whatever the test runner was started with (a shell may have ignored PIPE or INT), the child
// starts from the defaults.
void default_signals() {
  for (int sig = 1; sig < SIGRTMIN; ++sig)
    if (sig != SIGKILL && sig != SIGSTOP) ::signal(sig, SIG_DFL);
}

int exit_code(int status) { return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status); }

// One line of /proc/self/status as the exec'd grep saw it, e.g. "ShdPnd:\t0000000000000800".
std::string status_line(const std::string& text, const std::string& key) {
  auto at = text.find(key + ":");
  if (at == std::string::npos) return "(missing)";
  return text.substr(at, text.find('\n', at) - at);
}

}  // namespace

TEST_CASE("exec in place: USR1 and PIPE that arrived while blocked do not kill the server") {
  // Regression: the old exec restored the mask with them pending, and the server died (138, 141)
  // before running a line. kill() queues for the process, pthread_kill for the thread (a write to
  // a closed pipe on the main thread raises SIGPIPE that way).
  ExecRequest request{.argv = {"/bin/sh", "-c", "exit 0"}};
  const int status = exec_child(request, default_signals, [] {
    ::kill(::getpid(), SIGUSR1);
    ::pthread_kill(::pthread_self(), SIGPIPE);
    ::kill(::getpid(), SIGRTMIN + 2);
  });
  CHECK(exit_code(status) == 0);
}

TEST_CASE("exec in place: a stop signal that arrived first means no server and 128+N") {
  Scratch scratch;
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGQUIT}) {
    CAPTURE(sig);
    ExecRequest request{.argv = {"/bin/sh", "-c", "touch " + (scratch / "ran")}};
    const int status = exec_child(request, default_signals, [sig] { ::kill(::getpid(), sig); });
    CHECK(exit_code(status) == 128 + sig);
    CHECK_FALSE(fs::exists(scratch / "ran"));
  }
}

TEST_CASE("exec in place: the server gets the inherited mask and ignores; signals it blocked stay pending") {
  Scratch scratch;
  const std::string out = scratch / "status";
  ExecRequest request{.argv = {"grep", "-E", "^(SigBlk|SigIgn|ShdPnd|SigPnd)", "/proc/self/status"}};
  const int status = exec_child(
      request,
      [&out] {
        default_signals();
        sigset_t usr2;
        sigemptyset(&usr2);
        sigaddset(&usr2, SIGUSR2);
        sigprocmask(SIG_SETMASK, &usr2, nullptr);
        ::signal(SIGHUP, SIG_IGN);  // nohup
        int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        ::dup2(fd, 1);
        ::close(fd);
      },
      [] {
        ::kill(::getpid(), SIGUSR2);  // blocked by whoever started us: the server's to take
        ::kill(::getpid(), SIGUSR1);  // arrived for tensorinit: dropped
        ::kill(::getpid(), SIGHUP);   // ignored as inherited: neither a stop nor kept
      });
  REQUIRE(exit_code(status) == 0);
  const std::string text = slurp(out);
  CHECK(status_line(text, "SigBlk") == "SigBlk:\t0000000000000800");
  CHECK(status_line(text, "SigIgn") == "SigIgn:\t0000000000000001");
  CHECK(status_line(text, "ShdPnd") == "ShdPnd:\t0000000000000800");
  CHECK(status_line(text, "SigPnd") == "SigPnd:\t0000000000000000");
}

TEST_CASE("exec in place: kept descriptors stay open, every other one from 3 up is closed") {
  int kept[2];
  int other[2];
  REQUIRE(::pipe(kept) == 0);
  REQUIRE(::pipe(other) == 0);
  const std::string script = "test -e /proc/$$/fd/" + std::to_string(kept[1]) + " && ! test -e /proc/$$/fd/" +
                             std::to_string(other[1]) + " && echo kept >&" + std::to_string(kept[1]);
  ExecRequest request{.argv = {"/bin/sh", "-c", script}, .keep_fds = {kept[1]}};
  // O_CLOEXEC or not, the kept one stays and the other goes.
  ::fcntl(kept[1], F_SETFD, FD_CLOEXEC);
  const int status = exec_child(request, default_signals, nothing);
  ::close(kept[1]);
  ::close(other[1]);
  ::close(other[0]);
  char buf[16] = {};
  const ssize_t n = ::read(kept[0], buf, sizeof buf - 1);
  ::close(kept[0]);
  CHECK(exit_code(status) == 0);
  CHECK(std::string(buf, n > 0 ? static_cast<size_t>(n) : 0) == "kept\n");
}

TEST_CASE("exec in place: the environment overrides replace inherited variables") {
  ::setenv("TENSORINIT_EXEC_TEST", "inherited", 1);
  ExecRequest request{.argv = {"/bin/sh", "-c", "test \"$TENSORINIT_EXEC_TEST\" = given && test \"$TENSORINIT_OTHER\" = 2"},
                      .env = {{"TENSORINIT_EXEC_TEST", "given"}, {"TENSORINIT_OTHER", "2"}}};
  CHECK(exit_code(exec_child(request, default_signals, nothing)) == 0);
  ::unsetenv("TENSORINIT_EXEC_TEST");
}

TEST_CASE("exec in place: not found gives 127, not executable 126, with signals blocked again") {
  Scratch scratch;
  std::ofstream(scratch / "script") << "#!/bin/sh\nexit 0\n";
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    const auto inherited = block_all_signals();
    auto missing = exec_in_place({.argv = {"tensorinit-no-such-command"}}, inherited);
    auto not_executable = exec_in_place({.argv = {scratch / "script"}}, inherited);
    sigset_t now;
    sigprocmask(SIG_SETMASK, nullptr, &now);
    const bool blocked = sigismember(&now, SIGTERM) == 1 && sigismember(&now, SIGUSR1) == 1;
    const bool ok = missing.exit_code() == 127 && missing.message == "tensorinit-no-such-command: command not found" &&
                    not_executable.exit_code() == 126 && not_executable.message.find("Permission denied") != std::string::npos;
    ::_exit(ok && blocked ? 0 : 1);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  CHECK(exit_code(status) == 0);
}
