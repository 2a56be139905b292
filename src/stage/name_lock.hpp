// Ownership of a model name in a shm dir. Several instances (each container's init is PID 1) may
// share one /dev/shm; the arena, tensor table and ready socket of a name belong to one of them:
// the one holding an flock (LOCK_EX) on `<shm_dir>/.tensorinit-<model>.lock`. It is taken before
// any of them is created and held while any is in use; a second instance is refused (69) with
// the holder's hostname, pid (in its namespace) and start time, read from the lock file.
// Nothing relies on PIDs: the kernel drops the lock when the last descriptor of the holder (or,
// in exec mode, of the server it became) is closed, however the process ended.
// Thread-safety: acquire from any thread; a NameLock has one owner (no concurrent calls on it).
#pragma once

#include <string>

#include "util/error.hpp"
#include "util/fd.hpp"

namespace tensorinit::stage {

std::string name_lock_path(const std::string& shm_dir, const std::string& model);

class NameLock {
 public:
  NameLock() = default;  // owns nothing
  // Takes the name or fails: Code::unavailable naming the holder and the fix; Code::io when the
  // lock file cannot be created.
  static Result<NameLock> acquire(const std::string& shm_dir, const std::string& model);

  NameLock(NameLock&& other) noexcept = default;
  NameLock& operator=(NameLock&& other) noexcept;
  NameLock(const NameLock&) = delete;
  NameLock& operator=(const NameLock&) = delete;
  ~NameLock() { release(); }

  bool held() const { return static_cast<bool>(fd_); }
  int fd() const { return fd_.get(); }
  const std::string& path() const { return path_; }

  // The descriptor is close-on-exec. Exec handoff keeps it open for the server (init::ExecRequest's
  // keep_fds), so the server holds the name as long as it lives; the lock file then stays
  // (unlocked) after the server is gone: harmless, the next instance takes it.
  // Removes the lock file (while still holding it, so no one can take a name that is about to
  // vanish) and drops the lock. Called by the destructor.
  void release();

 private:
  std::string path_;
  UniqueFd fd_;
};

}  // namespace tensorinit::stage
