#include "init/spawn.hpp"

#include <errno.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

namespace tensorinit::init {
namespace {

// Runs in the vfork child, on our memory: only system calls, and the exec errno stored in
// `exec_errno` (our variable: we are suspended until the child execs or exits, so it is read
// after; glibc's posix_spawn reports its errors the same way). No pipe: measured, a pipe's
// create and teardown (inode, dentry, two files) was one of the plain init's costs.
[[noreturn]] void exec_child(ExecImage& image, volatile int* exec_errno, bool take_terminal,
                             const InheritedSignals& inherited) noexcept {
  ::setpgid(0, 0);
  // Ctrl-C, Ctrl-Z and terminal reads belong to the server's group. SIGTTOU is still blocked
  // here, so this works from our (foreground) group.
  if (take_terminal) ::tcsetpgrp(STDIN_FILENO, ::getpid());
  prepare_exec(inherited, {}, take_terminal);
  ::execvpe(image.argv()[0], image.argv(), image.envp());
  const int err = errno;
  *exec_errno = err;
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

  // vfork: the child borrows our memory until it execs (no page-table copy), and we resume
  // only then (or when it exited): its setpgid has happened by then, so a signal to the group
  // right away cannot miss. A child killed before its exec leaves exec_errno 0: reaped by the
  // caller like a server that died at once.
  volatile int exec_errno = 0;
  const pid_t pid = ::vfork();
  if (pid < 0) return fail(Code::internal, std::string("vfork: ") + strerror(errno));
  if (pid == 0) exec_child(image, &exec_errno, take_terminal, inherited);
  const int err = exec_errno;
  if (err == 0) return pid;

  int status;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return std::unexpected(exec_error(request.argv[0], err));
}

}  // namespace tensorinit::init
