#include "init/spawn.hpp"

#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "init/signals.hpp"
#include "util/fd.hpp"

extern char** environ;

namespace tensorinit::init {
namespace {

// The environment as storage plus the pointer array execve wants; built before fork, so the
// child allocates nothing.
struct Environment {
  std::vector<std::string> entries;
  std::vector<char*> pointers;
};

Environment build_environment(const std::vector<std::pair<std::string, std::string>>& overrides) {
  Environment env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view entry(*e);
    bool replaced = false;
    for (const auto& [key, value] : overrides) {
      if (entry.size() > key.size() && entry.starts_with(key) && entry[key.size()] == '=') {
        replaced = true;
        break;
      }
    }
    if (!replaced) env.entries.emplace_back(entry);
  }
  for (const auto& [key, value] : overrides) env.entries.push_back(key + "=" + value);
  for (auto& entry : env.entries) env.pointers.push_back(entry.data());
  env.pointers.push_back(nullptr);
  return env;
}

// Every descriptor from 3 up becomes close-on-exec (the exec-error pipe already is), so the
// child execs with 0, 1, 2 only. close_range needs Linux 5.11; older kernels walk the table.
void mark_cloexec_from_3() noexcept {
  if (::syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) == 0) return;
  const long limit = ::sysconf(_SC_OPEN_MAX);
  for (int fd = 3; fd < limit && fd < (1 << 20); ++fd) {
    int flags = ::fcntl(fd, F_GETFD);
    if (flags >= 0) ::fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
  }
}

[[noreturn]] void exec_child(char* const* argv, char* const* envp, int error_pipe,
                             bool take_terminal, const InheritedSignals& inherited) noexcept {
  ::setpgid(0, 0);
  // Ctrl-C, Ctrl-Z and terminal reads belong to the server's group. SIGTTOU is still blocked
  // here, so this works from our (foreground) group.
  if (take_terminal) ::tcsetpgrp(STDIN_FILENO, ::getpid());
  restore_inherited_signals(inherited);
  mark_cloexec_from_3();
  ::execvpe(argv[0], argv, envp);
  int err = errno;
  [[maybe_unused]] ssize_t n = ::write(error_pipe, &err, sizeof err);
  ::_exit(err == ENOENT ? 127 : 126);
}

}  // namespace

bool owns_terminal() {
  return ::isatty(STDIN_FILENO) == 1 && ::tcgetpgrp(STDIN_FILENO) == ::getpgrp();
}

int exit_code_of(int wait_status) {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  return 70;
}

Result<pid_t> spawn(const SpawnRequest& request, const InheritedSignals& inherited) {
  if (request.argv.empty()) return fail(Code::usage, "no command to run (give one after --)");
  std::vector<std::string> args = request.argv;
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  Environment env = build_environment(request.env);
  const bool take_terminal = request.take_terminal;

  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0)
    return fail(Code::internal, std::string("pipe2: ") + strerror(errno));
  UniqueFd read_end(fds[0]);
  UniqueFd write_end(fds[1]);

  // vfork: the child borrows our memory until it execs (no page-table copy); it only makes
  // system calls and writes to the pipe before exec or _exit.
  const pid_t pid = ::vfork();
  if (pid < 0) return fail(Code::internal, std::string("vfork: ") + strerror(errno));
  if (pid == 0) exec_child(argv.data(), env.pointers.data(), write_end.get(), take_terminal, inherited);

  ::setpgid(pid, pid);  // also in the parent, so a signal to the group right away cannot miss
  write_end.reset();
  int err = 0;
  ssize_t n;
  do {
    n = ::read(read_end.get(), &err, sizeof err);
  } while (n < 0 && errno == EINTR);
  if (n != static_cast<ssize_t>(sizeof err)) return pid;  // EOF: exec succeeded

  int status;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  const std::string& command = request.argv[0];
  if (err == ENOENT)
    return std::unexpected(Error{static_cast<Code>(127), command + ": command not found"});
  return std::unexpected(
      Error{static_cast<Code>(126), command + ": cannot execute: " + strerror(err)});
}

}  // namespace tensorinit::init
