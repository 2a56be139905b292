// A process holding a write lease (fcntl F_SETLEASE F_WRLCK) on a file, as Samba's kernel oplocks
// and knfsd's delegations do: it releases the lease when the kernel asks (the SIGIO that an open
// by another process sends while it breaks the lease), never by a clock. Test code; one holder at
// a time, made and ended on one thread.
#pragma once

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

namespace tensorinit::testing {

class LeaseHolder {
 public:
  explicit LeaseHolder(const std::string& path) {
    sigset_t io, old;
    sigemptyset(&io);
    sigaddset(&io, SIGIO);
    ::pthread_sigmask(SIG_BLOCK, &io, &old);  // the child inherits it: the break waits for sigwaitinfo
    int ready[2];
    if (::pipe(ready) != 0) return;
    const char* name = path.c_str();
    pid_ = ::fork();
    if (pid_ == 0) {  // async-signal-safe calls only
      ::close(ready[0]);
      const int fd = ::open(name, O_RDONLY);
      const char ok = fd >= 0 && ::fcntl(fd, F_SETLEASE, F_WRLCK) == 0 ? 'y' : 'n';
      (void)!::write(ready[1], &ok, 1);
      if (ok != 'y') ::_exit(2);
      siginfo_t info;
      while (::sigwaitinfo(&io, &info) != SIGIO) {}
      ::_exit(::fcntl(fd, F_SETLEASE, F_UNLCK) == 0 ? 0 : 3);
    }
    ::close(ready[1]);
    char ok = 'n';
    if (pid_ > 0 && ::read(ready[0], &ok, 1) != 1) ok = 'n';
    ::close(ready[0]);
    held_ = ok == 'y';
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  }
  ~LeaseHolder() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  LeaseHolder(const LeaseHolder&) = delete;
  LeaseHolder& operator=(const LeaseHolder&) = delete;

  // False where the lease could not be taken (leases disabled, a filesystem without them).
  bool held() const { return held_; }
  // Waits for the holder: true when the kernel asked it to release the lease and it did.
  bool released() {
    int status = 0;
    const bool ok = pid_ > 0 && ::waitpid(pid_, &status, 0) == pid_ && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    pid_ = -1;
    return ok;
  }

 private:
  pid_t pid_ = -1;
  bool held_ = false;
};

}  // namespace tensorinit::testing
