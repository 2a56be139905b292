#include "stage/name_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <cstring>
#include <fmt/format.h>

namespace tensorinit::stage {

std::string name_lock_path(const std::string& shm_dir, const std::string& model) {
  return fmt::format("{}/.tensorinit-{}.lock", shm_dir, model);
}

namespace {

// "host=<hostname> pid=<pid> started=<UTC time>": who holds the name, for the refused one.
std::string holder_line() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) std::strcpy(host, "?");
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  char started[32] = "?";
  if (::gmtime_r(&now, &utc)) std::strftime(started, sizeof started, "%Y-%m-%dT%H:%M:%SZ", &utc);
  for (char* c = host; *c; ++c)  // one token: the reader splits on spaces
    if (*c == ' ' || *c == '=') *c = '_';
  return fmt::format("host={} pid={} started={}\n", host, ::getpid(), started);
}

// What the holder wrote, printable and short (the file is in a shared, writable directory).
std::string read_holder(int fd) {
  char buf[256];
  const ssize_t n = ::pread(fd, buf, sizeof buf, 0);
  std::string out;
  for (ssize_t i = 0; i < n; ++i) {
    if (buf[i] == '\n') break;
    out.push_back(buf[i] >= 0x20 && buf[i] < 0x7f ? buf[i] : '?');
  }
  if (out.empty()) return "holder not recorded yet: it is starting";
  for (char& c : out)
    if (c == ' ') c = ',';
  std::string pretty;  // "host=a,pid=1,started=T" -> "host a, pid 1, started T"
  for (char c : out) {
    if (c == '=') pretty.push_back(' ');
    else if (c == ',') pretty += ", ";
    else pretty.push_back(c);
  }
  return pretty;
}

bool same_file(int fd, const std::string& path) {
  struct stat by_fd {}, by_path {};
  return ::fstat(fd, &by_fd) == 0 && ::stat(path.c_str(), &by_path) == 0 && by_fd.st_dev == by_path.st_dev &&
         by_fd.st_ino == by_path.st_ino;
}

}  // namespace

Result<NameLock> NameLock::acquire(const std::string& shm_dir, const std::string& model) {
  NameLock lock;
  lock.path_ = name_lock_path(shm_dir, model);
  // The holder unlinks the file before it lets go: a lock taken on a file that is no longer
  // (or not yet again) at the path guards nothing, so try again on the file that is there.
  for (int attempt = 0; attempt < 100; ++attempt) {
    UniqueFd fd(::open(lock.path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644));
    if (!fd)
      return fail(Code::io, fmt::format("{}: cannot create the lock of model.name '{}': {}", lock.path_, model,
                                        std::strerror(errno)));
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
      if (errno != EWOULDBLOCK)
        return fail(Code::io, fmt::format("{}: cannot lock: {}", lock.path_, std::strerror(errno)));
      return fail(Code::unavailable,
                  fmt::format("{}: model.name '{}' is in use by another tensorinit sharing {} ({}); give each "
                              "instance its own model.name (or its own {})",
                              lock.path_, model, shm_dir, read_holder(fd.get()), shm_dir));
    }
    if (!same_file(fd.get(), lock.path_)) continue;
    const std::string line = holder_line();
    if (::ftruncate(fd.get(), 0) != 0 ||
        ::pwrite(fd.get(), line.data(), line.size(), 0) != static_cast<ssize_t>(line.size()))
      return fail(Code::io, fmt::format("{}: cannot record the holder: {}", lock.path_, std::strerror(errno)));
    lock.fd_ = std::move(fd);
    return lock;
  }
  return fail(Code::unavailable, fmt::format("{}: the lock file keeps being replaced; another instance is starting "
                                             "and stopping with model.name '{}'", lock.path_, model));
}

NameLock& NameLock::operator=(NameLock&& other) noexcept {
  if (this == &other) return *this;
  release();
  path_ = std::move(other.path_);
  fd_ = std::move(other.fd_);
  return *this;
}

void NameLock::release() {
  if (!fd_) return;
  if (same_file(fd_.get(), path_)) ::unlink(path_.c_str());
  fd_.reset();
}

}  // namespace tensorinit::stage
