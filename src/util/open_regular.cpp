#include "util/open_regular.hpp"

#include <fcntl.h>

#include <cerrno>
#include <fmt/format.h>

namespace tensorinit {
namespace {

// After EWOULDBLOCK from the O_NONBLOCK open: a lease's holder is being asked to release it.
UniqueFd open_after_lease_break(const std::string& path) {
  const int first = errno;
  UniqueFd where(::open(path.c_str(), O_PATH | O_CLOEXEC));
  struct stat st {};
  if (!where || ::fstat(where.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    errno = first;
    return {};
  }
  // The inode checked, not whatever the path names by now; a regular file's open waits only for
  // the lease.
  UniqueFd fd(::open(fmt::format("/proc/self/fd/{}", where.get()).c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd && errno == ENOENT) errno = first;  // no /proc
  return fd;
}

}  // namespace

UniqueFd open_for_reading(const std::string& path, struct stat& st) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (!fd && errno == EWOULDBLOCK) fd = open_after_lease_break(path);
  if (!fd) return fd;
  if (::fstat(fd.get(), &st) != 0) {
    const int err = errno;
    fd.reset();
    errno = err;
    return fd;
  }
  if (S_ISREG(st.st_mode))
    if (int flags = ::fcntl(fd.get(), F_GETFL); flags >= 0) ::fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK);
  return fd;
}

}  // namespace tensorinit
