#include "init/spawn.hpp"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/fd.hpp"

namespace tensorinit::init {
namespace {

[[noreturn]] void exec_child(ExecImage& image, int error_pipe, bool take_terminal,
                             const InheritedSignals& inherited) noexcept {
  ::setpgid(0, 0);
  // Ctrl-C, Ctrl-Z and terminal reads belong to the server's group. SIGTTOU is still blocked
  // here, so this works from our (foreground) group.
  if (take_terminal) ::tcsetpgrp(STDIN_FILENO, ::getpid());
  prepare_exec(inherited, {}, take_terminal);  // the exec-error pipe is close-on-exec like everything else
  ::execvpe(image.argv()[0], image.argv(), image.envp());
  int err = errno;
  [[maybe_unused]] ssize_t n = ::write(error_pipe, &err, sizeof err);
  ::_exit(err == ENOENT ? static_cast<int>(Code::not_found) : static_cast<int>(Code::not_executable));
}

}  // namespace

bool owns_terminal() {
  return ::isatty(STDIN_FILENO) == 1 && ::tcgetpgrp(STDIN_FILENO) == ::getpgrp();
}

Result<pid_t> spawn(const SpawnRequest& request, const InheritedSignals& inherited) {
  if (request.argv.empty()) return fail(Code::usage, "no command to run (give one after --)");
  ExecImage image(request.argv, request.env);
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
  if (pid == 0) exec_child(image, write_end.get(), take_terminal, inherited);

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
  return std::unexpected(exec_error(request.argv[0], err));
}

}  // namespace tensorinit::init
