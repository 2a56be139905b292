#include "stage/cache_fill.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fmt/format.h>
#include <random>
#include <vector>

#include "io/file_source.hpp"
#include "util/atomic_file.hpp"
#include "util/log.hpp"

namespace tensorinit::stage {
namespace {

namespace fs = std::filesystem;
constexpr uint64_t kGapRead = 8ull << 20;

std::string errno_text() { return std::strerror(errno); }

// Stale partials of this file from crashed replicas (called with the lock held).
void remove_stale_partials(const std::string& final_path) {
  const fs::path final(final_path);
  const std::string prefix = final.filename().string() + ".partial.";
  std::error_code ec;
  for (fs::directory_iterator it(final.parent_path(), ec), end; !ec && it != end; it.increment(ec))
    if (it->path().filename().string().starts_with(prefix)) fs::remove(it->path(), ec);
}

Status write_all_at(int fd, std::span<const std::byte> bytes, uint64_t offset) {
  while (!bytes.empty()) {
    const ssize_t n = ::pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return fail(Code::io, errno_text());
    bytes = bytes.subspan(static_cast<size_t>(n));
    offset += static_cast<uint64_t>(n);
  }
  return {};
}

// "<file>.partial.<random>", created exclusively: a name no other process (in any PID namespace)
// is using.
Result<std::pair<UniqueFd, std::string>> create_partial(const std::string& final_path) {
  thread_local std::mt19937_64 random{std::random_device{}()};
  for (int attempt = 0;; ++attempt) {
    std::string path = fmt::format("{}.partial.{:016x}", final_path, random());
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (fd) return std::pair{std::move(fd), std::move(path)};
    if (errno != EEXIST || attempt == 8) return fail(Code::io, fmt::format("{}: {}", path, errno_text()));
  }
}

}  // namespace

Result<std::unique_ptr<CacheFill>> CacheFill::begin(const std::string& final_path, CacheRecord record) {
  std::error_code ec;
  fs::create_directories(fs::path(final_path).parent_path(), ec);
  if (ec) return fail(Code::io, fmt::format("{}: cannot create the cache directory: {}", final_path, ec.message()));
  // The lock file is never removed: unlinking a lock file lets two processes lock different inodes.
  const std::string lock_path = final_path + ".lock";
  UniqueFd lock(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (!lock) return fail(errno == EACCES ? Code::denied : Code::io, fmt::format("{}: {}", lock_path, errno_text()));
  if (::flock(lock.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) return std::unique_ptr<CacheFill>();
    return fail(Code::io, fmt::format("{}: cannot lock: {}", lock_path, errno_text()));
  }
  remove_stale_partials(final_path);
  // A record's temporary left by a replica that died writing it (only the lock's holder writes it).
  remove_stale_temporaries(io::cache_record_path(final_path));
  // The record goes first: from here on, the old file (if any) is not trusted.
  io::remove_cache_record(final_path);
  auto created = create_partial(final_path);
  if (!created) return std::unexpected(created.error());
  auto [partial, partial_path] = std::move(*created);
  // Reserve the space now: a full volume fails here, before any byte is read for it.
  if (int err = ::posix_fallocate(partial.get(), 0, static_cast<off_t>(record.size)); err != 0) {
    ::unlink(partial_path.c_str());
    return fail(Code::io, fmt::format("{}: cannot reserve {} bytes: {}", partial_path, record.size, std::strerror(err)));
  }
  return std::unique_ptr<CacheFill>(
      new CacheFill(final_path, std::move(record), std::move(lock), std::move(partial), partial_path));
}

CacheFill::CacheFill(std::string final_path, CacheRecord record, UniqueFd lock, UniqueFd partial,
                     std::string partial_path)
    : final_path_(std::move(final_path)), record_(std::move(record)), lock_(std::move(lock)),
      partial_(std::move(partial)), partial_path_(std::move(partial_path)) {}

CacheFill::~CacheFill() {
  if (!committed_) ::unlink(partial_path_.c_str());
}

bool CacheFill::abandoned() const {
  std::lock_guard lock(mutex_);
  return abandoned_;
}

void CacheFill::write(uint64_t offset, std::span<const std::byte> bytes) {
  {
    std::lock_guard lock(mutex_);
    if (abandoned_) return;
  }
  if (auto ok = write_all_at(partial_.get(), bytes, offset); !ok) {
    std::lock_guard lock(mutex_);
    if (!abandoned_) log::warn(fmt::format("{}: cache write failed ({}); not caching it", partial_path_, ok.error().message));
    abandoned_ = true;
    return;
  }
  std::lock_guard lock(mutex_);
  uint64_t start = offset, end = offset + bytes.size();
  auto it = covered_.upper_bound(start);
  if (it != covered_.begin() && std::prev(it)->second >= start) --it;
  while (it != covered_.end() && it->first <= end) {
    start = std::min(start, it->first);
    end = std::max(end, it->second);
    it = covered_.erase(it);
  }
  covered_.emplace(start, end);
}

Status CacheFill::fill_gaps(const io::ByteSource& source) {
  std::vector<std::pair<uint64_t, uint64_t>> gaps;
  {
    std::lock_guard lock(mutex_);
    uint64_t at = 0;
    for (auto [start, end] : covered_) {
      if (start > at) gaps.emplace_back(at, start);
      at = std::max(at, end);
    }
    if (at < record_.size) gaps.emplace_back(at, record_.size);
  }
  std::vector<std::byte> buffer;
  for (auto [start, end] : gaps)
    for (uint64_t at = start; at < end;) {
      buffer.resize(std::min(kGapRead, end - at));
      if (auto ok = source.read_at(at, buffer); !ok) return ok;
      if (auto ok = write_all_at(partial_.get(), buffer, at); !ok) return ok;
      at += buffer.size();
    }
  return {};
}

Status CacheFill::commit(const io::ByteSource& source, const Check& check) {
  if (abandoned()) return fail(Code::io, fmt::format("{}: abandoned after a write error", partial_path_));
  if (auto ok = fill_gaps(source); !ok) return ok;
  if (::fdatasync(partial_.get()) != 0) return fail(Code::io, fmt::format("{}: fsync: {}", partial_path_, errno_text()));
  if (check) {
    auto copy = io::FileSource::open(partial_path_);
    if (!copy) return std::unexpected(copy.error());
    if (auto ok = check(**copy); !ok) return ok;
  }
  struct stat st {};
  if (::fstat(partial_.get(), &st) != 0) return fail(Code::io, fmt::format("{}: fstat: {}", partial_path_, errno_text()));
  committed_file_.device = static_cast<uint64_t>(st.st_dev);
  committed_file_.inode = static_cast<uint64_t>(st.st_ino);
  if (::rename(partial_path_.c_str(), final_path_.c_str()) != 0)
    return fail(Code::io, fmt::format("{}: rename: {}", final_path_, errno_text()));
  committed_ = true;
  if (auto ok = fsync_parent_directory(final_path_); !ok) return ok;
  return io::write_cache_record(final_path_, record_);
}

Status WriteThroughSource::read_at(uint64_t offset, std::span<std::byte> out) const {
  if (auto ok = inner_->read_at(offset, out); !ok) return ok;
  fill_.write(offset, out);
  return {};
}

}  // namespace tensorinit::stage
