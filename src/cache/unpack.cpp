#include "cache/unpack.hpp"

#include "util/redact.hpp"

#include <algorithm>
#include <deque>
#include <filesystem>
#include <fmt/format.h>
#include <future>
#include <memory>
#include <optional>
#include <unordered_set>

namespace tensorinit::cache {
namespace {

constexpr size_t kMaxRecordBytes = 64 << 10;
constexpr size_t kMaxPathBytes = 4096;


// Sequential reads of a ByteSource for libarchive's read callback, `prefetch` chunks in flight
// (each an async read_at: for a remote source, a ranged GET on its own connection).
class ChunkReader {
 public:
  ChunkReader(const io::ByteSource& source, const UnpackLimits& limits, std::stop_token stop)
      : source_(source), chunk_(std::max<uint64_t>(limits.chunk, 4096)),
        depth_(std::max<uint32_t>(limits.prefetch, 1)), stop_(std::move(stop)) {}
  ~ChunkReader() {
    for (auto& f : inflight_) f.wait();
  }

  // The next chunk, empty at the end; nullptr with error() set on failure.
  const std::string* next() {
    while (inflight_.size() < depth_ && issued_ < source_.size()) issue();
    if (inflight_.empty()) {
      current_.clear();
      return &current_;
    }
    auto got = inflight_.front().get();
    inflight_.pop_front();
    if (!got) {
      error_ = got.error();
      return nullptr;
    }
    current_ = std::move(*got);
    return &current_;
  }
  const std::optional<Error>& error() const { return error_; }

 private:
  void issue() {
    const uint64_t offset = issued_, n = std::min(chunk_, source_.size() - issued_);
    issued_ += n;
    inflight_.push_back(std::async(std::launch::async, [this, offset, n]() -> Result<std::string> {
      if (stop_.stop_requested()) return fail(Code::stopped, "stopped");
      std::string bytes(n, '\0');
      if (auto ok = source_.read_at(offset, std::as_writable_bytes(std::span(bytes))); !ok)
        return std::unexpected(ok.error());
      return bytes;
    }));
  }

  const io::ByteSource& source_;
  uint64_t chunk_;
  uint32_t depth_;
  std::stop_token stop_;
  uint64_t issued_ = 0;
  std::deque<std::future<Result<std::string>>> inflight_;
  std::string current_;
  std::optional<Error> error_;
};

la_ssize_t read_callback(archive*, void* user, const void** buffer) {
  auto* reader = static_cast<ChunkReader*>(user);
  const std::string* chunk = reader->next();
  if (!chunk) return -1;
  *buffer = chunk->data();
  return static_cast<la_ssize_t>(chunk->size());
}

class Unpacker {
 public:
  Unpacker(const ArchiveApi& api, const std::string& dir, const UnpackLimits& limits, std::stop_token stop)
      : api_(api), dir_(dir), limits_(limits), stop_(stop) {}

  Result<Unpacked> run(const io::ByteSource& source);

 private:
  Status entry(archive* in, archive* out, archive_entry* e, const std::string& path);
  Status copy_data(archive* in, archive* out, const std::string& path, uint64_t declared);
  Result<std::string> read_small(archive* in, uint64_t declared);
  Error refuse(const std::string& path, const std::string& what) const {
    return Error{Code::bad_data, fmt::format("{}: {}", printable(path), what)};
  }

  const ArchiveApi& api_;
  std::string dir_;
  UnpackLimits limits_;
  std::stop_token stop_;
  ContentHash hash_;
  uint64_t files_ = 0, bytes_ = 0;
  std::unordered_set<std::string> seen_;
};

Status Unpacker::copy_data(archive* in, archive* out, const std::string& path, uint64_t declared) {
  std::vector<char> buffer(1 << 20);
  uint64_t got = 0;
  for (;;) {
    if (stop_.stop_requested()) return fail(Code::stopped, "stopped");
    la_ssize_t n = api_.read_data(in, buffer.data(), buffer.size());
    if (n < 0) return fail(Code::bad_data, fmt::format("{}: {}", printable(path), archive_error(api_, in)));
    if (n == 0) break;
    got += static_cast<uint64_t>(n);
    bytes_ += static_cast<uint64_t>(n);
    if (got > declared || bytes_ > limits_.max_size)
      return std::unexpected(refuse(path, fmt::format("more than max_size ({} bytes) unpacked", limits_.max_size)));
    const auto consumed = static_cast<double>(std::max<la_int64_t>(api_.filter_bytes(in, -1), 1));
    if (bytes_ > limits_.ratio_floor && static_cast<double>(bytes_) > limits_.max_ratio * consumed)
      return std::unexpected(refuse(path, fmt::format("expands more than {:.0f} times (a zip bomb?)", limits_.max_ratio)));
    hash_.data(std::as_bytes(std::span(buffer.data(), static_cast<size_t>(n))));
    if (api_.write_data(out, buffer.data(), static_cast<size_t>(n)) != n)
      return fail(Code::io, fmt::format("{}/{}: {}", dir_, printable(path), archive_error(api_, out)));
  }
  if (got != declared) return std::unexpected(refuse(path, "shorter than its header says"));
  return {};
}

Result<std::string> Unpacker::read_small(archive* in, uint64_t declared) {
  if (declared > kMaxRecordBytes) return fail(Code::bad_data, "the record is too large");
  std::string text(declared, '\0');
  size_t at = 0;
  while (at < text.size()) {
    la_ssize_t n = api_.read_data(in, text.data() + at, text.size() - at);
    if (n <= 0) return fail(Code::bad_data, fmt::format("the record: {}", n < 0 ? archive_error(api_, in) : "short"));
    at += static_cast<size_t>(n);
  }
  return text;
}

Status Unpacker::entry(archive* in, archive* out, archive_entry* e, const std::string& path) {
  const unsigned type = api_.entry_filetype(e);
  TreeEntry t{.path = path, .perm = static_cast<mode_t>(api_.entry_perm(e) & 0777)};
  if (api_.entry_hardlink(e)) return std::unexpected(refuse(path, "a hard link (not restored)"));
  if (type == AE_IFREG) {
    const la_int64_t size = api_.entry_size(e);
    if (size < 0) return std::unexpected(refuse(path, "no size"));
    t.size = static_cast<uint64_t>(size);
    if (t.size > limits_.max_size || bytes_ + t.size > limits_.max_size)
      return std::unexpected(refuse(path, fmt::format("more than max_size ({} bytes) unpacked", limits_.max_size)));
  } else if (type == AE_IFDIR) {
    t.type = EntryType::directory;
  } else if (type == AE_IFLNK) {
    t.type = EntryType::symlink;
    const char* target = api_.entry_symlink(e);
    t.link = target ? target : "";
    if (!link_stays_inside(path, t.link))
      return std::unexpected(refuse(path, fmt::format("a symlink pointing out of the cache ('{}')", printable(t.link))));
  } else {
    return std::unexpected(refuse(path, "not a file, directory or symlink (a device, FIFO or socket)"));
  }
  hash_.begin(t);
  ++files_;
  api_.entry_set_perm(e, t.perm | (t.type == EntryType::directory ? 0700 : 0));
  api_.entry_copy_pathname(e, (dir_ + "/" + path).c_str());
  if (api_.write_header(out, e) != ARCHIVE_OK)
    return fail(Code::bad_data, fmt::format("{}: cannot be restored: {}", printable(path), archive_error(api_, out)));
  if (t.type == EntryType::file)
    if (auto ok = copy_data(in, out, path, t.size); !ok) return ok;
  if (api_.write_finish_entry(out) != ARCHIVE_OK)
    return fail(Code::io, fmt::format("{}/{}: {}", dir_, printable(path), archive_error(api_, out)));
  return {};
}

Result<Unpacked> Unpacker::run(const io::ByteSource& source) {
  ChunkReader reader(source, limits_, stop_);
  std::unique_ptr<archive, ReadFree> in(api_.read_new(), ReadFree{&api_});
  std::unique_ptr<archive, WriteFree> out(api_.write_disk_new(), WriteFree{&api_});
  if (!in || !out) return fail(Code::internal, "libarchive: out of memory");
  // SECURE_SYMLINKS: never write through a symlink (one restored earlier included).
  api_.write_disk_set_options(out.get(), ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SECURE_NODOTDOT |
                                             ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME);
  api_.read_support_filter_zstd(in.get());
  api_.read_support_format_tar(in.get());
  if (api_.read_open(in.get(), &reader, nullptr, read_callback, nullptr) != ARCHIVE_OK) {
    if (reader.error()) return std::unexpected(*reader.error());
    return fail(Code::bad_data, fmt::format("not a tar.zst archive: {}", archive_error(api_, in.get())));
  }
  std::optional<Record> record;
  for (;;) {
    if (stop_.stop_requested()) return fail(Code::stopped, "stopped");
    archive_entry* e = nullptr;
    const int r = api_.read_next_header(in.get(), &e);
    if (r == ARCHIVE_EOF) break;
    if (reader.error()) return std::unexpected(*reader.error());
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN) return fail(Code::bad_data, fmt::format("corrupt: {}", archive_error(api_, in.get())));
    if (record) return fail(Code::bad_data, "entries after the record (not an archive tensorinit wrote)");
    const char* raw = api_.entry_pathname(e);
    auto path = raw ? safe_relative_path(raw) : std::nullopt;
    if (!path || path->size() > kMaxPathBytes)
      return std::unexpected(refuse(raw ? raw : "?", "an absolute path, '..', or an empty name"));
    if (!seen_.insert(*path).second) return std::unexpected(refuse(*path, "appears twice"));
    if (seen_.size() > kMaxEntries) return std::unexpected(refuse(*path, fmt::format("more than {} entries", kMaxEntries)));
    if (*path == kRecordName) {
      if (api_.entry_filetype(e) != AE_IFREG) return fail(Code::bad_data, "the record is not a file");
      auto text = read_small(in.get(), static_cast<uint64_t>(std::max<la_int64_t>(api_.entry_size(e), 0)));
      if (!text) return std::unexpected(text.error());
      auto parsed = parse_record(*text);
      if (!parsed) return std::unexpected(parsed.error());
      record = std::move(*parsed);
      continue;
    }
    if (auto ok = entry(in.get(), out.get(), e, *path); !ok) return std::unexpected(ok.error());
  }
  if (reader.error()) return std::unexpected(*reader.error());
  if (!record) return fail(Code::bad_data, "no record at the end (a torn archive, or one tensorinit did not write)");
  if (api_.write_close(out.get()) != ARCHIVE_OK) return fail(Code::io, fmt::format("{}: {}", dir_, archive_error(api_, out.get())));
  const std::string sha = hash_.finish();
  if (sha != record->sha256 || files_ != record->files || bytes_ != record->bytes)
    return fail(Code::bad_data, "the contents differ from the archive's record (corrupt)");
  return Unpacked{.record = std::move(*record), .archive_bytes = static_cast<uint64_t>(api_.filter_bytes(in.get(), -1))};
}

}  // namespace

Result<Unpacked> unpack(const ArchiveApi& api, const io::ByteSource& archive, const std::string& dir,
                        const UnpackLimits& limits, std::stop_token stop) {
  std::error_code ec;
  const std::string real = std::filesystem::canonical(dir, ec).string();
  if (ec) return fail(Code::io, fmt::format("{}: {}", dir, ec.message()));
  auto unpacked = Unpacker(api, real, limits, stop).run(archive);
  if (!unpacked) empty_directory(real);
  return unpacked;
}

void empty_directory(const std::string& dir) {
  std::error_code ec;
  for (const auto& child : std::filesystem::directory_iterator(dir, ec)) {
    std::error_code ignored;
    std::filesystem::remove_all(child.path(), ignored);  // removes links, never their targets
  }
}

bool directory_is_empty(const std::string& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return false;
  return std::filesystem::directory_iterator(dir, ec) == std::filesystem::directory_iterator() && !ec;
}

}  // namespace tensorinit::cache
