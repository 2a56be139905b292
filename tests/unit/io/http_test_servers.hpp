// Real HTTP servers on loopback for the remote-read tests, each owned by an RAII object:
// tests/tools/fault_server.py (driven through its stdin; it exits at EOF, so it cannot outlive
// the test binary) and Debian's nginx through tests/tools/nginx.sh.
// Every answer is awaited with a generous limit (kAnswerTimeout): a child that dies or is starved
// for that long fails the test with a message that says so, instead of a parse error or a hang.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace tensorinit::testing {

inline std::string tools_dir() { return std::string(TENSORINIT_FIXTURES) + "/../tools"; }

// A child process with a pipe to its stdin and one from its stdout.
class Child {
 public:
  // How long an answer may take: far more than any answer needs, even on a loaded machine.
  static constexpr std::chrono::seconds kAnswerTimeout{120};

  explicit Child(std::vector<std::string> argv) : name_(argv.size() > 1 ? argv[1] : argv[0]) {
    int in[2], out[2];
    if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in[0], 0);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    const int rc = ::posix_spawnp(&pid_, args[0], &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(in[0]);
    ::close(out[1]);
    if (rc != 0) {
      ::close(in[1]);
      ::close(out[0]);
      throw std::runtime_error("cannot start " + argv[0]);
    }
    to_ = ::fdopen(in[1], "w");
    from_ = out[0];
  }
  ~Child() {
    std::fclose(to_);  // EOF on its stdin: a well-behaved child exits
    bool reaped = false;
    for (int i = 0; i < 300 && !(reaped = ::waitpid(pid_, nullptr, WNOHANG) == pid_); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (!reaped) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    ::close(from_);
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  // The next line the child prints. Throws when it ends its output (exits) or says nothing for
  // kAnswerTimeout; a signal arriving meanwhile is not an end.
  std::string read_line() {
    const auto deadline = std::chrono::steady_clock::now() + kAnswerTimeout;
    for (;;) {
      if (size_t nl = pending_.find('\n'); nl != std::string::npos) {
        std::string line = pending_.substr(0, nl);
        pending_.erase(0, nl + 1);
        return line;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) throw std::runtime_error(name_ + ": no answer within " + std::to_string(kAnswerTimeout.count()) + " s");
      pollfd p{from_, POLLIN, 0};
      const int ready = ::poll(&p, 1, static_cast<int>(left.count()));
      if (ready < 0 && errno != EINTR) throw std::runtime_error(name_ + ": poll failed");
      if (ready <= 0) continue;
      char buffer[4096];
      const ssize_t n = ::read(from_, buffer, sizeof buffer);
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (n <= 0) throw std::runtime_error(name_ + ": ended its output (exited?) before answering; see its stderr");
      pending_.append(buffer, static_cast<size_t>(n));
    }
  }
  std::string ask(const std::string& line) {
    std::fputs((line + "\n").c_str(), to_);
    std::fflush(to_);
    return read_line();
  }
  pid_t pid() const { return pid_; }

 private:
  std::string name_;
  pid_t pid_ = -1;
  FILE* to_ = nullptr;
  int from_ = -1;
  std::string pending_;  // read, not yet returned
};

// A port number printed by a server, or an exception that quotes what it printed instead.
inline int parse_port(const std::string& line, const std::string& who) {
  int port = 0;
  auto [end, ec] = std::from_chars(line.data(), line.data() + line.size(), port);
  if (ec != std::errc() || end != line.data() + line.size() || port <= 0 || port > 65535)
    throw std::runtime_error(who + " printed \"" + line + "\" where its port was expected");
  return port;
}

// tests/tools/fault_server.py serving `root` on two loopback ports.
class FaultServer {
 public:
  explicit FaultServer(const std::string& root, std::vector<std::string> extra = {})
      : child_(command(root, std::move(extra))) {
    port_ = parse_port(child_.read_line(), "fault_server.py");
    alt_port_ = parse_port(child_.read_line(), "fault_server.py");
  }
  // The main port speaks https when started with --tls.
  std::string url(const std::string& path, bool alt = false) const {
    return "http://127.0.0.1:" + std::to_string(alt ? alt_port_ : port_) + path;
  }
  std::string https_url(const std::string& path) const { return "https://127.0.0.1:" + std::to_string(port_) + path; }
  int alt_port() const { return alt_port_; }
  // "PATH MODE k=v ..." (see fault_server.py)
  void fault(const std::string& rule) {
    if (child_.ask("fault " + rule) != "ok") throw std::runtime_error("fault_server refused: " + rule);
  }
  void clear() { child_.ask("clear"); }
  // "if_match ignore", "etag weak", "etag none" (see fault_server.py)
  void set(const std::string& setting) {
    if (child_.ask("set " + setting) != "ok") throw std::runtime_error("fault_server refused: set " + setting);
  }
  nlohmann::json log() { return nlohmann::json::parse(child_.ask("log")); }

 private:
  static std::vector<std::string> command(const std::string& root, std::vector<std::string> extra) {
    std::vector<std::string> argv{"python3", tools_dir() + "/fault_server.py", root, "--stdin-control"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return argv;
  }

  Child child_;
  int port_ = 0;
  int alt_port_ = 0;
};

// Debian's nginx serving `root` on a free loopback port, with its files under `dir`. nginx.sh
// --until-eof stops it when our pipe closes, so even a crashed test leaves no server behind.
class Nginx {
 public:
  Nginx(const std::string& root, const std::string& dir)
      : child_({"bash", tools_dir() + "/nginx.sh", "start", root, dir, "--until-eof"}) {
    std::string line;
    try {
      line = child_.read_line();
    } catch (const std::runtime_error& e) {
      throw std::runtime_error(std::string(e.what()) + " (nginx.sh start failed: see " + dir + "/error.log)");
    }
    port_ = parse_port(line, "nginx.sh start");
  }

  std::string url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(port_) + path; }

 private:
  Child child_;
  int port_ = 0;
};

}  // namespace tensorinit::testing
