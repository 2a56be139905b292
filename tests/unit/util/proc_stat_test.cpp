// read_proc_stat against what the kernel says through other calls: the parent (getppid), this
// process by pid and as /proc/self alike, a child's state once it exited (a zombie), a pid gone.
#include "util/proc_stat.hpp"

#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

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

}  // namespace
}  // namespace tensorinit
