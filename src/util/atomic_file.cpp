#include "util/atomic_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/random.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fmt/format.h>

#include "util/fd.hpp"
#include "util/open_regular.hpp"

namespace tensorinit {

namespace {

constexpr std::string_view kTempEnd = ".tmp";
constexpr size_t kSuffixDigits = 16;  // random_suffix()

std::string temporary_name(const std::string& name) { return fmt::format("{}.{}{}", name, random_suffix(), kTempEnd); }

// `entry` is temporary_name(name) for some suffix.
bool is_temporary_of(std::string_view entry, std::string_view name) {
  if (entry.size() != name.size() + 1 + kSuffixDigits + kTempEnd.size() || !entry.starts_with(name) ||
      !entry.ends_with(kTempEnd) || entry[name.size()] != '.')
    return false;
  const std::string_view digits = entry.substr(name.size() + 1, kSuffixDigits);
  return digits.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

}  // namespace

void remove_stale_temporaries(const std::string& path) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  const std::string name = target.filename().string();
  std::error_code ec;
  for (fs::directory_iterator it(target.has_parent_path() ? target.parent_path() : fs::path("."), ec), end;
       !ec && it != end; it.increment(ec))
    if (is_temporary_of(it->path().filename().string(), name)) fs::remove(it->path(), ec);
}

Status write_file_atomically_at(int dir, const std::string& name, const std::string& shown, std::string_view content) {
  const std::string temp = temporary_name(name);
  UniqueFd fd(::openat(dir, temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
  if (!fd) return fail(Code::io, fmt::format("{}: cannot write: {}", shown, std::strerror(errno)));
  const char* p = content.data();
  size_t left = content.size();
  while (left > 0) {
    ssize_t n = ::write(fd.get(), p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = errno;
      ::unlinkat(dir, temp.c_str(), 0);
      return fail(Code::io, fmt::format("{}: write failed: {}", shown, std::strerror(err)));
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  if (::fsync(fd.get()) != 0 || ::renameat(dir, temp.c_str(), dir, name.c_str()) != 0) {
    const int err = errno;
    ::unlinkat(dir, temp.c_str(), 0);
    return fail(Code::io, fmt::format("{}: cannot commit: {}", shown, std::strerror(err)));
  }
  if (::fsync(dir) != 0)
    return fail(Code::io, fmt::format("{}: cannot sync the directory: {}", shown, std::strerror(errno)));
  return {};
}

Status write_file_atomically(const std::string& path, std::string_view content) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  std::error_code ec;
  fs::create_directories(dir, ec);
  UniqueFd dir_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir_fd) return fail(Code::io, fmt::format("{}: cannot write: {}", path, std::strerror(errno)));
  return write_file_atomically_at(dir_fd.get(), target.filename().string(), path, content);
}

std::string random_suffix() {
  uint64_t value = 0;
  if (::getrandom(&value, sizeof value, 0) != static_cast<ssize_t>(sizeof value)) {
    // No entropy source (very early boot): the time and address still differ between instances.
    value = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) ^
            reinterpret_cast<uintptr_t>(&value);
  }
  return fmt::format("{:016x}", value);
}

Status fsync_parent_directory(const std::string& path) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd || ::fsync(fd.get()) != 0)
    return fail(Code::io, fmt::format("{}: cannot sync the directory: {}", dir, std::strerror(errno)));
  return {};
}

Result<std::string> read_whole_file(const std::string& path, std::string_view what) {
  // A FIFO put under the name (a server that can write shm_dir) must not hold the caller (PID 1's
  // loop) in open until someone writes it (util/open_regular.hpp).
  struct stat st {};
  UniqueFd fd = open_for_reading(path, st);
  if (!fd || !S_ISREG(st.st_mode))
    return fail(Code::io, fmt::format("cannot read the {} {}{}", what, path, fd ? ": not a regular file" : ""));
  std::string text;
  char buffer[65536];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(Code::io, fmt::format("cannot read the {} {}: {}", what, path, std::strerror(errno)));
    if (n == 0) return text;
    text.append(buffer, static_cast<size_t>(n));
  }
}

}  // namespace tensorinit
