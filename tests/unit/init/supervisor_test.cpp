// The supervisor driven for real: each case forks a process that runs supervise() (it reaps with
// waitpid(-1) and becomes a subreaper, so it cannot run inside the test process itself) over
// real shell commands. PID-1 behaviour is covered by tests/integration/test_init_*.sh.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <thread>

#include "../scratch_dir.hpp"
#include "init/supervisor.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using tensorinit::Code;
using tensorinit::Status;
using tensorinit::init::Options;
using tensorinit::init::SignalHandoff;

namespace {

using Scratch = tensorinit::testing::ScratchDir;
using tensorinit::testing::slurp;

Options shell(std::string script) {
  Options options;
  options.command = {"/bin/sh", "-c", std::move(script)};
  options.grace = 2000ms;
  return options;
}

// Forks a supervisor; `before` runs in it after the signals are blocked (to queue a signal).
pid_t start_supervisor(const Options& options, void (*before)() = nullptr) {
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    // The cases are about a supervisor started with default dispositions. Started by a runner
    // under `nohup` (HUP ignored) or a shell that ignores QUIT, it would pass those on as ignored
    // (tini's rule, signals_test.cpp) and HUP would never reach the server: seen under nohup.
    for (int sig : {SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2}) ::signal(sig, SIG_DFL);
    auto inherited = tensorinit::init::block_all_signals();
    if (before != nullptr) before();
    ::_exit(tensorinit::init::supervise(options, inherited));
  }
  return pid;
}

int wait_code(pid_t pid) {
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  return WEXITSTATUS(status);
}

int run_supervised(const Options& options, void (*before)() = nullptr) {
  return wait_code(start_supervisor(options, before));
}

// Waits for an event the other side signals by creating a file. The limit only turns a hang into
// a failure: on a starved machine anything shorter than a minute can be reached by a correct run.
bool await_file(const std::string& path) {
  for (int i = 0; i < 6000; ++i) {
    if (fs::exists(path)) return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

// Whether `sig` is pending for process `pid` (ShdPnd of /proc/PID/status).
bool pending_in(pid_t pid, int sig) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line))
    if (line.starts_with("ShdPnd:")) return (std::stoull(line.substr(7), nullptr, 16) >> (sig - 1)) & 1;
  return false;
}

// A stage that says it started (a file), then waits for stop (writing "stopped") or for the test
// to release it (a file); a minute at most.
std::function<Status(std::stop_token)> waiting_stage(const std::string& started, const std::string& seen,
                                                     const std::string& release = "") {
  return [=](std::stop_token stop) -> Status {
    std::ofstream(started) << "started";
    for (int i = 0; i < 6000 && !stop.stop_requested(); ++i) {
      if (!release.empty() && fs::exists(release)) return {};
      std::this_thread::sleep_for(10ms);
    }
    if (stop.stop_requested()) std::ofstream(seen) << "stopped";
    return {};
  };
}

// Connects to the readiness socket (retrying until it exists) and reads to EOF.
std::string read_socket(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  path.copy(addr.sun_path, sizeof addr.sun_path - 1);
  for (int attempt = 0; attempt < 6000; ++attempt) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
      std::string text;
      char buf[4096];
      ssize_t n;
      while ((n = ::read(fd, buf, sizeof buf)) > 0) text.append(buf, static_cast<size_t>(n));
      ::close(fd);
      return text;
    }
    ::close(fd);
    std::this_thread::sleep_for(10ms);
  }
  return "(no socket)";
}

}  // namespace

TEST_CASE("the child's exit code and 128+N for a signal become tensorinit's") {
  CHECK(run_supervised(shell("exit 0")) == 0);
  CHECK(run_supervised(shell("exit 7")) == 7);
  CHECK(run_supervised(shell("kill -USR2 $$")) == 128 + SIGUSR2);
}

TEST_CASE("exec failures: 127 when not found, 126 when not executable") {
  Scratch scratch;
  Options missing;
  missing.command = {"tensorinit-no-such-command"};
  CHECK(run_supervised(missing) == 127);
  std::ofstream(scratch / "script") << "#!/bin/sh\nexit 0\n";
  ::chmod((scratch / "script").c_str(), 0644);
  Options not_executable;
  not_executable.command = {scratch / "script"};
  CHECK(run_supervised(not_executable) == 126);
}

TEST_CASE("a SIGTERM that arrives before the child exists gives 143 and no child") {
  Scratch scratch;
  auto options = shell("touch " + (scratch / "ran"));
  CHECK(run_supervised(options, [] { ::kill(::getpid(), SIGTERM); }) == 143);
  CHECK_FALSE(fs::exists(scratch / "ran"));
}

TEST_CASE("signals are forwarded to the child") {
  Scratch scratch;
  const std::string out = scratch / "got";
  auto options = shell("trap 'echo HUP >> " + out + "; : > " + out + ".hup' HUP; trap 'echo USR1 >> " + out +
                       "; exit 5' USR1; echo up > " + out + ".up; while :; do sleep 0.01; done");
  pid_t pid = start_supervisor(options);
  REQUIRE(await_file(out + ".up"));
  ::kill(pid, SIGHUP);
  REQUIRE(await_file(out + ".hup"));
  ::kill(pid, SIGUSR1);
  CHECK(wait_code(pid) == 5);
  CHECK(slurp(out) == "HUP\nUSR1\n");
}

TEST_CASE("leftover helpers get SIGTERM, and SIGKILL after the grace") {
  Scratch scratch;
  const std::string pidfile = scratch / "helper.pid";
  // The helper ignores SIGTERM; the main child exits at once.
  auto options = shell("sh -c 'trap \"\" TERM; echo $$ > " + pidfile +
                       "; while :; do sleep 0.05; done' & while [ ! -s " + pidfile +
                       " ]; do sleep 0.01; done; exit 3");
  options.grace = 300ms;
  auto start = std::chrono::steady_clock::now();
  CHECK(run_supervised(options) == 3);  // a supervisor that never sent SIGKILL would hang here
  CHECK(std::chrono::steady_clock::now() - start >= 300ms);  // the grace is a lower bound only
  pid_t helper = std::stoi(slurp(pidfile));
  CHECK(::kill(helper, 0) != 0);  // gone (and reaped: not even a zombie)
}

// The plain init waits in sigtimedwait: no asio set-up (epoll, eventfd, timerfd) and no signalfd,
// 43 -> 25 system calls (docs/notes/init20.md). The server looks at its parent's descriptors.
TEST_CASE("the plain init waits without an event loop: no epoll, eventfd, timerfd or signalfd") {
  Scratch scratch;
  const std::string out = scratch / "fds";
  CHECK(run_supervised(shell("for f in /proc/$PPID/fd/*; do readlink $f; done > " + out)) == 0);
  const std::string fds = slurp(out);
  CHECK_FALSE(fds.empty());  // it did see the supervisor's descriptors (0, 1, 2 at least)
  std::string own;  // what the forked supervisor inherited from this process is not its own
  for (const auto& entry : fs::directory_iterator("/proc/self/fd")) {
    std::error_code error;
    own += fs::read_symlink(entry.path(), error).string() + "\n";
  }
  for (const char* kind : {"eventpoll", "eventfd", "timerfd", "signalfd"})
    if (own.find(kind) == std::string::npos) CHECK_MESSAGE(fds.find(kind) == std::string::npos, kind);
}

TEST_CASE("the plain init: a server that ignores SIGTERM gets SIGKILL when the grace ends") {
  Scratch scratch;
  const std::string up = scratch / "up";
  auto options = shell("trap '' TERM; : > " + up + "; while :; do sleep 0.01; done");
  options.grace = 200ms;
  pid_t pid = start_supervisor(options);
  REQUIRE(await_file(up));
  ::kill(pid, SIGTERM);
  CHECK(wait_code(pid) == 128 + SIGKILL);  // a supervisor that never sent SIGKILL would hang here
}

TEST_CASE("signal handoff: the server is signalled when staging is done and clients get the table") {
  Scratch scratch;
  SignalHandoff handoff;
  handoff.socket_path = scratch / "ready.sock";
  const std::string table = R"({"version": 1, "tensors": []})";
  bool staged = false;  // the table is asked for only once staging returned
  handoff.table = [&] { return staged ? table : std::string("too early"); };
  handoff.stage = [&](std::stop_token) -> Status {
    std::this_thread::sleep_for(200ms);
    staged = true;
    return {};
  };
  const std::string out = scratch / "server";
  // The server also lists its descriptors: the listening socket must not leak into it. (Only
  // sockets are looked for: the shell itself briefly holds pipe ends and saved copies of fd 1.)
  auto options = shell("ls -l /proc/$$/fd/ > " + out + ".fds; trap 'echo \"$TENSORINIT_SOCKET\" > " +
                       out + "; exit 42' USR1; while :; do sleep 0.01; done");
  options.handoff = &handoff;
  pid_t pid = start_supervisor(options);
  std::string answer = read_socket(handoff.socket_path);
  CHECK(answer == "ready " + std::to_string(table.size()) + "\n" + table);
  CHECK(wait_code(pid) == 42);
  CHECK(slurp(out) == handoff.socket_path + "\n");
  const std::string fds = slurp(out + ".fds");
  CHECK(fds.find(" 0 -> ") != std::string::npos);  // the listing happened
  CHECK(fds.find("socket:") == std::string::npos);
  CHECK_FALSE(fs::exists(handoff.socket_path));  // removed on exit
}

TEST_CASE("signal handoff: a staging failure stops the server and gives the error's code") {
  Scratch scratch;
  SignalHandoff handoff;
  handoff.socket_path = scratch / "ready.sock";
  handoff.stage = [](std::stop_token) -> Status {
    std::this_thread::sleep_for(100ms);
    return tensorinit::fail(Code::bad_data, "model.safetensors: header is not JSON");
  };
  // SIGTERM, not the grace: the server says it got TERM (with a minute's grace, a supervisor that
  // waited for it would SIGKILL the server first, and the file would be missing).
  const std::string got = scratch / "got";
  auto options = shell("trap 'echo TERM > " + got + "; exit 0' TERM; while :; do sleep 0.01; done");
  options.grace = 60s;
  options.handoff = &handoff;
  pid_t pid = start_supervisor(options);
  CHECK(read_socket(handoff.socket_path) == "error 65 model.safetensors: header is not JSON\n");
  CHECK(wait_code(pid) == 65);
  CHECK(slurp(got) == "TERM\n");
}

TEST_CASE("signal handoff: the server exiting during staging stops the stage") {
  Scratch scratch;
  const std::string seen = scratch / "stop-seen";
  SignalHandoff handoff;
  handoff.stage = [&](std::stop_token stop) -> Status {
    for (int i = 0; i < 6000 && !stop.stop_requested(); ++i) std::this_thread::sleep_for(10ms);
    if (stop.stop_requested()) std::ofstream(seen) << "stopped";
    return tensorinit::fail(Code::internal, "cancelled");
  };
  auto options = shell("exit 3");
  options.handoff = &handoff;
  CHECK(run_supervised(options) == 3);
  CHECK(slurp(seen) == "stopped");
}

TEST_CASE("signal handoff: TERM, INT, HUP or QUIT during after-load staging stops it; the server never starts") {
  // HUP and QUIT: regression (HUP was dropped, and the server started on a stopping container).
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGQUIT}) {
    CAPTURE(sig);
    Scratch scratch;
    const std::string seen = scratch / "stop-seen";
    SignalHandoff handoff;
    handoff.start_early = false;
    handoff.stage = waiting_stage(scratch / "started", seen);
    auto options = shell("touch " + (scratch / "ran"));
    options.handoff = &handoff;
    pid_t pid = start_supervisor(options);
    REQUIRE(await_file(scratch / "started"));
    ::kill(pid, sig);
    CHECK(wait_code(pid) == 128 + sig);
    CHECK(slurp(seen) == "stopped");
    CHECK_FALSE(fs::exists(scratch / "ran"));
  }
}

TEST_CASE("signal handoff: USR1 during after-load staging is not passed on to the server started later") {
  Scratch scratch;
  SignalHandoff handoff;
  handoff.start_early = false;
  handoff.stage = waiting_stage(scratch / "started", scratch / "stop-seen", scratch / "release");
  auto options = shell("exit 7");
  options.handoff = &handoff;
  pid_t pid = start_supervisor(options);
  REQUIRE(await_file(scratch / "started"));
  ::kill(pid, SIGUSR1);
  // The supervisor has read it once it is no longer pending; then staging may finish.
  for (int i = 0; i < 6000 && pending_in(pid, SIGUSR1); ++i) std::this_thread::sleep_for(10ms);
  std::ofstream(scratch / "release") << "go";
  CHECK(wait_code(pid) == 7);
  CHECK_FALSE(fs::exists(scratch / "stop-seen"));
}

TEST_CASE("signals that arrived before the server existed: a stop signal means no server, others are dropped") {
  Scratch scratch;
  auto options = shell("touch " + (scratch / "ran"));
  CHECK(run_supervised(options, [] { ::kill(::getpid(), SIGHUP); }) == 128 + SIGHUP);
  CHECK_FALSE(fs::exists(scratch / "ran"));
  // Regression: USR1 queued during start-up was forwarded the instant the server existed, before
  // it could have a handler, and killed it (138).
  CHECK(run_supervised(shell("exit 0"), [] { ::kill(::getpid(), SIGUSR1); }) == 0);
}

TEST_CASE("signal handoff: after-load starts the server once staged, with TENSORINIT_SOCKET") {
  Scratch scratch;
  SignalHandoff handoff;
  handoff.start_early = false;
  handoff.socket_path = scratch / "ready.sock";
  handoff.table = [] { return std::string("{}"); };
  handoff.stage = [&](std::stop_token) -> Status { return {}; };
  auto options = shell("test -S \"$TENSORINIT_SOCKET\" && exit 9");
  options.handoff = &handoff;
  CHECK(run_supervised(options) == 9);
}

TEST_CASE("a child tensorinit inherited (exec keeps children) exiting before the start ends nothing") {
  // Its SIGCHLD is read with the other start-up signals; the loop must still run for the server.
  auto before = [] {
    const pid_t inherited_child = ::fork();
    if (inherited_child == 0) ::_exit(0);
    siginfo_t info{};
    ::waitid(P_PID, static_cast<id_t>(inherited_child), &info, WEXITED | WNOWAIT);  // a zombie now
  };
  CHECK(run_supervised(shell("exit 5"), before) == 5);
}
