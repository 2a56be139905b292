// A model name in a shm dir has one owner at a time; the refused one learns who holds it.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "../scratch_dir.hpp"
#include "stage/name_lock.hpp"

namespace {

namespace fs = std::filesystem;
using namespace tensorinit;
using namespace tensorinit::stage;

using tensorinit::testing::ShmDir;

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("a second owner of a name is refused with 69, naming the holder and the fix") {
  ShmDir dir;
  auto first = NameLock::acquire(dir.path, "tiny");
  REQUIRE(first);
  CHECK(first->held());
  CHECK(first->path() == (dir.path / ".tensorinit-tiny.lock").string());
  auto second = NameLock::acquire(dir.path, "tiny");  // another open file description: refused
  REQUIRE(!second);
  CHECK(second.error().code == Code::unavailable);
  const std::string& message = second.error().message;
  CHECK(contains(message, ".tensorinit-tiny.lock"));
  CHECK(contains(message, "pid " + std::to_string(::getpid())));
  CHECK(contains(message, "host "));
  CHECK(contains(message, "started "));
  CHECK(contains(message, "give each instance its own model.name"));
  CHECK(NameLock::acquire(dir.path, "tiny-2"));  // another name: free
}

TEST_CASE("a released name is free again and leaves no lock file") {
  ShmDir dir;
  {
    auto lock = NameLock::acquire(dir.path, "m");
    REQUIRE(lock);
    CHECK(fs::exists(lock->path()));
  }
  CHECK(fs::is_empty(dir.path));
  auto again = NameLock::acquire(dir.path, "m");
  CHECK(again);
}

TEST_CASE("a holder that died (any way, any pid) frees the name: the kernel drops its lock") {
  ShmDir dir;
  int ready[2];
  REQUIRE(::pipe(ready) == 0);
  const pid_t child = ::fork();
  if (child == 0) {
    auto lock = NameLock::acquire(dir.path, "m");
    char c = lock ? 'y' : 'n';
    (void)!::write(ready[1], &c, 1);
    ::pause();
    ::_exit(0);
  }
  char c = 0;
  REQUIRE(::read(ready[0], &c, 1) == 1);
  CHECK(c == 'y');
  CHECK(!NameLock::acquire(dir.path, "m"));
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  CHECK(NameLock::acquire(dir.path, "m"));  // the stale lock file is simply taken over
  ::close(ready[0]);
  ::close(ready[1]);
}

TEST_CASE("the lock's descriptor is close-on-exec (exec handoff keeps it explicitly)") {
  ShmDir dir;
  auto lock = NameLock::acquire(dir.path, "m");
  REQUIRE(lock);
  CHECK((::fcntl(lock->fd(), F_GETFD) & FD_CLOEXEC) != 0);
}
