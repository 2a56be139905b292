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
#include <string>
#include <thread>

#include "init/supervisor.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using tensorinit::Code;
using tensorinit::Status;
using tensorinit::init::Options;
using tensorinit::init::SignalHandoff;

namespace {

struct Scratch {
  fs::path dir;
  Scratch() {
    char tmpl[] = "/tmp/tensorinit-init-test-XXXXXX";
    dir = ::mkdtemp(tmpl);
  }
  ~Scratch() { fs::remove_all(dir); }
  std::string operator/(const char* name) const { return (dir / name).string(); }
};

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

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

// Connects to the readiness socket (retrying until it exists) and reads to EOF.
std::string read_socket(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  path.copy(addr.sun_path, sizeof addr.sun_path - 1);
  for (int attempt = 0; attempt < 500; ++attempt) {
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
  auto options = shell("trap 'echo HUP >> " + out + "' HUP; trap 'echo USR1 >> " + out +
                       "; exit 5' USR1; echo up > " + out + ".up; while :; do sleep 0.01; done");
  pid_t pid = start_supervisor(options);
  for (int i = 0; i < 500 && !fs::exists(out + ".up"); ++i) std::this_thread::sleep_for(10ms);
  ::kill(pid, SIGHUP);
  std::this_thread::sleep_for(100ms);
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
  CHECK(run_supervised(options) == 3);
  auto took = std::chrono::steady_clock::now() - start;
  CHECK(took >= 300ms);
  CHECK(took < 5s);
  pid_t helper = std::stoi(slurp(pidfile));
  CHECK(::kill(helper, 0) != 0);  // gone (and reaped: not even a zombie)
}

TEST_CASE("signal handoff: the server is signalled when staging is done and clients get the table") {
  Scratch scratch;
  SignalHandoff handoff;
  handoff.socket_path = scratch / "ready.sock";
  handoff.table_path = scratch / "table.json";
  const std::string table = R"({"version": 1, "tensors": []})";
  handoff.stage = [&](std::stop_token) -> Status {
    std::this_thread::sleep_for(200ms);
    std::ofstream(handoff.table_path) << table;
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
  auto options = shell("exec sleep 30");
  options.handoff = &handoff;
  auto start = std::chrono::steady_clock::now();
  pid_t pid = start_supervisor(options);
  CHECK(read_socket(handoff.socket_path) == "error 65 model.safetensors: header is not JSON\n");
  CHECK(wait_code(pid) == 65);
  CHECK(std::chrono::steady_clock::now() - start < 2s);  // SIGTERM, not the grace
}

TEST_CASE("signal handoff: the server exiting during staging stops the stage") {
  Scratch scratch;
  const std::string seen = scratch / "stop-seen";
  SignalHandoff handoff;
  handoff.stage = [&](std::stop_token stop) -> Status {
    for (int i = 0; i < 1000 && !stop.stop_requested(); ++i) std::this_thread::sleep_for(5ms);
    if (stop.stop_requested()) std::ofstream(seen) << "stopped";
    return tensorinit::fail(Code::internal, "cancelled");
  };
  auto options = shell("exit 3");
  options.handoff = &handoff;
  CHECK(run_supervised(options) == 3);
  CHECK(slurp(seen) == "stopped");
}

TEST_CASE("signal handoff: SIGTERM during after-load staging stops it; the server never starts") {
  Scratch scratch;
  const std::string seen = scratch / "stop-seen";
  SignalHandoff handoff;
  handoff.start_early = false;
  handoff.stage = [&](std::stop_token stop) -> Status {
    for (int i = 0; i < 1000 && !stop.stop_requested(); ++i) std::this_thread::sleep_for(5ms);
    if (stop.stop_requested()) std::ofstream(seen) << "stopped";
    return {};
  };
  auto options = shell("touch " + (scratch / "ran"));
  options.handoff = &handoff;
  pid_t pid = start_supervisor(options);
  std::this_thread::sleep_for(100ms);
  ::kill(pid, SIGTERM);
  CHECK(wait_code(pid) == 143);
  CHECK(slurp(seen) == "stopped");
  CHECK_FALSE(fs::exists(scratch / "ran"));
}

TEST_CASE("signal handoff: after-load starts the server once staged, with TENSORINIT_SOCKET") {
  Scratch scratch;
  SignalHandoff handoff;
  handoff.start_early = false;
  handoff.socket_path = scratch / "ready.sock";
  handoff.table_path = scratch / "table.json";
  handoff.stage = [&](std::stop_token) -> Status {
    std::ofstream(handoff.table_path) << "{}";
    return {};
  };
  auto options = shell("test -S \"$TENSORINIT_SOCKET\" && exit 9");
  options.handoff = &handoff;
  CHECK(run_supervised(options) == 9);
}
