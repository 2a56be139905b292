#include "stage/shm_arena.hpp"

#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fmt/format.h>

#include "util/atomic_file.hpp"
#include "util/units.hpp"

namespace tensorinit::stage {

std::string arena_path(const std::string& shm_dir, const std::string& model, int index) {
  return fmt::format("{}/tensorinit-{}-{}", shm_dir, model, index);
}

namespace {

// '@' cannot occur in a model name: the prefix of "a" is not a prefix of "a-0"'s partials.
std::string partial_prefix(const std::string& model) { return fmt::format(".tensorinit-{}@", model); }

Status check_free_space(const std::string& shm_dir, uint64_t bytes) {
  struct statvfs st {};
  if (::statvfs(shm_dir.c_str(), &st) != 0)
    return fail(Code::io, fmt::format("{}: {} (the host arena needs a shared-memory filesystem there)", shm_dir,
                                      std::strerror(errno)));
  const uint64_t free_bytes = static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
  if (free_bytes < bytes)
    return fail(Code::io, fmt::format("{} has {} free but the host arena needs {}: give the container more shared "
                                      "memory (docker run --shm-size={}g, or in Kubernetes an emptyDir with medium: "
                                      "Memory mounted at /dev/shm), or use stage.target: pagecache",
                                      shm_dir, format_bytes(free_bytes), format_bytes(bytes),
                                      (bytes >> 30) + 1));
  return {};
}

}  // namespace

Result<ShmArena> ShmArena::create(const std::string& shm_dir, const std::string& model, int index, uint64_t bytes) {
  if (auto ok = check_free_space(shm_dir, bytes); !ok) return std::unexpected(ok.error());
  ShmArena arena;
  arena.final_path_ = arena_path(shm_dir, model, index);
  arena.partial_base_ = fmt::format("{}/{}{}.", shm_dir, partial_prefix(model), index);
  // Unnamed first (linked at publish through /proc/self/fd, so /proc must be there).
  int fd = ::access("/proc/self/fd", X_OK) == 0 ? ::open(shm_dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0644) : -1;
  if (fd < 0) {
    arena.temp_path_ = fmt::format("{}{}.partial", arena.partial_base_, random_suffix());
    fd = ::open(arena.temp_path_.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) return fail(Code::io, fmt::format("{}: {}", arena.temp_path_, std::strerror(errno)));
  }
  arena.fd_.reset(fd);
  arena.bytes_ = bytes;
  if (::ftruncate(fd, static_cast<off_t>(bytes)) != 0)
    return fail(Code::io, fmt::format("{}: cannot size the host arena to {} bytes: {}", arena.final_path_, bytes,
                                      std::strerror(errno)));
  return arena;
}

Status ShmArena::publish() {
  if (temp_path_.empty()) {  // unnamed: give it a private name first (linkat cannot replace)
    const std::string name = fmt::format("{}{}.partial", partial_base_, random_suffix());
    const std::string self = fmt::format("/proc/self/fd/{}", fd_.get());
    if (::linkat(AT_FDCWD, self.c_str(), AT_FDCWD, name.c_str(), AT_SYMLINK_FOLLOW) != 0)
      return fail(Code::io, fmt::format("{}: cannot link the staged arena: {}", name, std::strerror(errno)));
    temp_path_ = name;
  }
  if (::rename(temp_path_.c_str(), final_path_.c_str()) != 0)
    return fail(Code::io, fmt::format("{}: cannot rename to {}: {}", temp_path_, final_path_, std::strerror(errno)));
  published_ = true;
  return {};
}

ShmArena& ShmArena::operator=(ShmArena&& other) noexcept {
  if (this == &other) return *this;
  remove();
  temp_path_ = std::exchange(other.temp_path_, {});
  partial_base_ = std::exchange(other.partial_base_, {});
  final_path_ = std::exchange(other.final_path_, {});
  fd_ = std::move(other.fd_);
  bytes_ = std::exchange(other.bytes_, 0);
  published_ = std::exchange(other.published_, false);
  keep_ = std::exchange(other.keep_, false);
  return *this;
}

void ShmArena::remove() {
  if (final_path_.empty()) return;  // moved from, or never created
  if (!published_) {
    if (!temp_path_.empty()) ::unlink(temp_path_.c_str());
  }
  else if (!keep_) ::unlink(final_path_.c_str());
}

void remove_stale_partials(const std::string& shm_dir, const std::string& model) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const std::string prefix = partial_prefix(model);
  for (fs::directory_iterator it(shm_dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.starts_with(prefix) && name.ends_with(".partial")) fs::remove(it->path(), ec);
  }
}

}  // namespace tensorinit::stage
