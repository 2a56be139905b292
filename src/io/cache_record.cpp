#include "io/cache_record.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "util/atomic_file.hpp"
#include "util/fd.hpp"
#include "util/open_regular.hpp"

namespace tensorinit::io {

// A record is well under 1 KiB (a redacted URL, an ETag, a number); more is not a record.
constexpr size_t kMaxRecordBytes = 16 << 10;

std::string cache_record_path(const std::string& file_path) { return file_path + ".tensorinit.json"; }

Result<CacheRecord> read_cache_record(const std::string& file_path) {
  const std::string path = cache_record_path(file_path);
  // A FIFO under the name (anyone who can write the cache volume) must not hold the start in open
  // until someone writes it (it did: every signal is blocked there); util/open_regular.hpp.
  struct stat st {};
  UniqueFd fd = open_for_reading(path, st);
  if (!fd) return fail(Code::no_source, fmt::format("{}: no cache record ({})", path, std::strerror(errno)));
  if (!S_ISREG(st.st_mode))
    return fail(Code::bad_data, fmt::format("{}: not a cache record (not a regular file)", path));
  std::string text;
  char buffer[4096];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(Code::no_source, fmt::format("{}: unreadable ({})", path, std::strerror(errno)));
    if (n == 0) break;
    text.append(buffer, static_cast<size_t>(n));
    if (text.size() > kMaxRecordBytes) return fail(Code::bad_data, fmt::format("{}: not a cache record (too long)", path));
  }
  try {
    const auto j = nlohmann::json::parse(text);
    return CacheRecord{j.at("url").get<std::string>(), j.at("etag").get<std::string>(), j.at("size").get<uint64_t>()};
  } catch (const nlohmann::json::exception&) {
    return fail(Code::bad_data, fmt::format("{}: not a cache record", path));
  }
}

Status write_cache_record(const std::string& file_path, const CacheRecord& record) {
  const std::string text = nlohmann::json{{"url", record.url}, {"etag", record.etag}, {"size", record.size}}.dump();
  return write_file_atomically(cache_record_path(file_path), text + "\n");
}

void remove_cache_record(const std::string& file_path) {
  if (::unlink(cache_record_path(file_path).c_str()) == 0) (void)fsync_parent_directory(file_path);
}

}  // namespace tensorinit::io
