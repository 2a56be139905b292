// early_term K|spawn PROGRAM [ARG...]: runs PROGRAM as PID 1 of a fresh PID namespace (with its
// own /proc) and sends it SIGTERM at a moment fixed by the program itself, not by timing: right
// after its K-th system call since execve returns (K >= 1; a second execve, as the first stage
// makes, counts as one), or with `spawn`, after the first that creates a process (fork, vfork,
// clone, clone3: the server's spawn). ptrace stops it there and lets go before the signal is sent
// (a traced process never has a signal dropped, so it is let go right after the signal is sent). Prints "syscall K:
// NR execs E at NS" (E: the execve calls that succeeded since PROGRAM's, NS: CLOCK_MONOTONIC
// when the signal was sent) to stderr and exits with PROGRAM's exit code (128+N if a signal killed it). A SIGTERM the
// kernel dropped leaves PROGRAM running: after WATCHDOG seconds (default 60) it is killed, "lost"
// printed, exit 255. K = 0: at the exit of execve, before the first instruction: the kernel's own
// window, which no init can close (every dynamic or static init loses that signal).
// Needs root (CLONE_NEWPID, mount). x86-64. Built by tests/integration/test_first_stage.sh.
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static pid_t child;
static void on_alarm(int sig) { (void)sig; }

static int die(const char* what) {
  perror(what);
  if (child > 0) kill(child, SIGKILL);
  return 254;
}

int main(int argc, char** argv) {
  if (argc < 3) return fprintf(stderr, "usage: early_term K PROGRAM [ARG...]\n"), 2;
  const int until_spawn = strcmp(argv[1], "spawn") == 0;
  const long k = until_spawn ? 1L << 30 : strtol(argv[1], NULL, 10);
  if (unshare(CLONE_NEWPID | CLONE_NEWNS) != 0) return die("unshare");
  child = fork();
  if (child < 0) return die("fork");
  if (child == 0) {  // PID 1 of the new namespace: a /proc of its own, defaults, then PROGRAM
    if (mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 || mount("proc", "/proc", "proc", 0, NULL) != 0)
      _exit(250);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (int sig = 1; sig < NSIG; ++sig) signal(sig, SIG_DFL);
    if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) != 0) _exit(251);
    raise(SIGSTOP);
    execv(argv[2], argv + 2);
    _exit(127);
  }
  int status;
  if (waitpid(child, &status, 0) != child || !WIFSTOPPED(status)) return die("waitpid (stop)");
  if (ptrace(PTRACE_SETOPTIONS, child, NULL, (void*)(PTRACE_O_TRACEEXEC | PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL)) != 0)
    return die("PTRACE_SETOPTIONS");
  if (ptrace(PTRACE_CONT, child, NULL, NULL) != 0) return die("PTRACE_CONT");
  if (waitpid(child, &status, 0) != child || status >> 8 != (SIGTRAP | PTRACE_EVENT_EXEC << 8))
    return fprintf(stderr, "early_term: no exec (status %#x)\n", status), die("exec");
  // The first stop after the exec event is the exit of that execve (syscall 0: stopped there, the
  // program has not run one instruction).
  if (ptrace(PTRACE_SYSCALL, child, NULL, NULL) != 0) return die("PTRACE_SYSCALL");
  if (waitpid(child, &status, 0) != child || !WIFSTOPPED(status) || WSTOPSIG(status) != (SIGTRAP | 0x80))
    return fprintf(stderr, "early_term: no stop at the exit of execve (status %#x)\n", status), die("execve");
  long seen = 0, nr = 59, execs = 0;
  int entering = 1;
  while (seen < k) {  // syscall-entry and -exit stops alternate; event stops (exec) do not count
    if (ptrace(PTRACE_SYSCALL, child, NULL, NULL) != 0) return die("PTRACE_SYSCALL");
    if (waitpid(child, &status, 0) != child) return die("waitpid (syscall)");
    if (WIFEXITED(status) || WIFSIGNALED(status))
      return fprintf(stderr, "early_term: exited before syscall %ld\n", k), 253;
    if (status >> 16 != 0) {  // PTRACE_EVENT_EXEC of a later execve
      ++execs;
      continue;
    }
    if (WSTOPSIG(status) != (SIGTRAP | 0x80)) return fprintf(stderr, "early_term: signal %d\n", WSTOPSIG(status)), die("stop");
    if (entering)
      nr = ptrace(PTRACE_PEEKUSER, child, (void*)offsetof(struct user_regs_struct, orig_rax), NULL);
    else if (++seen, until_spawn && (nr == 56 || nr == 57 || nr == 58 || nr == 435))
      break;  // (a successful execve stops at its exit too, in the new image)
    entering = !entering;
  }
  // Stopped at the exit of the K-th system call: the signal, then let go. Sent to a traced process
  // it is queued whatever the mask; once detached, the kernel delivers it on the way back to user
  // mode, where an init that has not blocked it (default disposition) drops it, exactly as it
  // would have at send time. Detaching first would race the program's next instructions.
  struct timespec sent;
  clock_gettime(CLOCK_MONOTONIC, &sent);
  if (kill(child, SIGTERM) != 0) return die("kill");
  if (ptrace(PTRACE_DETACH, child, NULL, NULL) != 0) return die("PTRACE_DETACH");
  fprintf(stderr, "syscall %ld: %ld execs %ld at %lld\n", seen, nr, execs,
          (long long)sent.tv_sec * 1000000000LL + sent.tv_nsec);
  struct sigaction alarm_action = {0};
  alarm_action.sa_handler = on_alarm;  // no SA_RESTART: waitpid returns EINTR
  sigaction(SIGALRM, &alarm_action, NULL);
  const char* watchdog = getenv("WATCHDOG");
  alarm(watchdog ? (unsigned)atoi(watchdog) : 60);
  while (waitpid(child, &status, 0) != child) {
    if (errno != EINTR) return die("waitpid");
    fprintf(stderr, "lost: SIGTERM after syscall %ld (%ld) did not stop it\n", k, nr);
    kill(child, SIGKILL);
    waitpid(child, &status, 0);
    return 255;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
