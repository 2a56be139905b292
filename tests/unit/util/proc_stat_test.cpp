// read_proc_stat against what the kernel says through other calls: the parent (getppid), this
// process by pid and as /proc/self alike, a child's state once it exited (a zombie), a pid gone.
#include "util/proc_stat.hpp"

#include <doctest/doctest.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

namespace tensorinit {
namespace {

TEST_CASE("read_proc_stat: this process, by pid and as self") {
  const auto self = read_proc_stat(0);
  const auto by_pid = read_proc_stat(::getpid());
  REQUIRE(self);
  REQUIRE(by_pid);
  CHECK(self->ppid == ::getppid());
  CHECK(by_pid->ppid == ::getppid());
  CHECK(self->start_time > 0);
  CHECK(self->start_time == by_pid->start_time);
  CHECK(self->state == 'R');
}

TEST_CASE("read_proc_stat: an exited child is a zombie of ours until reaped, then gone") {
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) ::_exit(0);
  siginfo_t info{};
  REQUIRE(::waitid(P_PID, static_cast<id_t>(child), &info, WEXITED | WNOWAIT) == 0);  // exited, not reaped
  const auto zombie = read_proc_stat(child);
  REQUIRE(zombie);
  CHECK(zombie->state == 'Z');
  CHECK(zombie->ppid == ::getpid());
  REQUIRE(::waitpid(child, nullptr, 0) == child);
  CHECK_FALSE(read_proc_stat(child));
}

TEST_CASE("proc_pid: our pid in /proc, also when /proc is another PID namespace's") {
  CHECK(proc_is_ours());
  CHECK(proc_pid(::getpid()) == ::getpid());
  // A child in a new PID namespace (pid 1 there) on this /proc, as under `unshare -p -f` without
  // --mount-proc: /proc/1 is not it; proc_pid gives the number /proc/self names. Needs root.
  const pid_t helper = ::fork();
  REQUIRE(helper >= 0);
  if (helper == 0) {
    if (::unshare(CLONE_NEWPID) != 0) ::_exit(77);
    const pid_t inner = ::fork();
    if (inner < 0) ::_exit(2);
    if (inner == 0) {
      char link[32] = {};
      if (::readlink("/proc/self", link, sizeof link - 1) <= 0) ::_exit(3);
      const auto there = proc_pid(::getpid());
      const bool right = ::getpid() == 1 && !proc_is_ours() && there && std::to_string(*there) == link;
      ::_exit(right ? 0 : 1);
    }
    int status = 0;
    ::waitpid(inner, &status, 0);
    ::_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 4);
  }
  int status = 0;
  ::waitpid(helper, &status, 0);
  REQUIRE(WIFEXITED(status));
  if (WEXITSTATUS(status) == 77) return;  // not allowed to make a PID namespace here
  CHECK(WEXITSTATUS(status) == 0);
}

}  // namespace
}  // namespace tensorinit
