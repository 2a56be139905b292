// Real HTTP servers on loopback for the remote-read tests, each owned by an RAII object:
// tests/tools/fault_server.py (driven through its stdin; it exits at EOF, so it cannot outlive
// the test binary) and Debian's nginx through tests/tools/nginx.sh.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

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
  explicit Child(std::vector<std::string> argv) {
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
    from_ = ::fdopen(out[0], "r");
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
    std::fclose(from_);
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  std::string read_line() {
    std::string line;
    for (int c; (c = std::fgetc(from_)) != EOF && c != '\n';) line += static_cast<char>(c);
    return line;
  }
  std::string ask(const std::string& line) {
    std::fputs((line + "\n").c_str(), to_);
    std::fflush(to_);
    return read_line();
  }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  FILE* to_ = nullptr;
  FILE* from_ = nullptr;
};

// tests/tools/fault_server.py serving `root` on two loopback ports.
class FaultServer {
 public:
  explicit FaultServer(const std::string& root, std::vector<std::string> extra = {})
      : child_(command(root, std::move(extra))) {
    port_ = std::stoi(child_.read_line());
    alt_port_ = std::stoi(child_.read_line());
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
    const std::string line = child_.read_line();
    if (line.empty()) throw std::runtime_error("nginx.sh start failed (see " + dir + "/error.log)");
    port_ = std::stoi(line);
  }

  std::string url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(port_) + path; }

 private:
  Child child_;
  int port_ = 0;
};

}  // namespace tensorinit::testing
