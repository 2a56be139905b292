#include "cache/content.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <dirent.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <ranges>

#include "util/fd.hpp"
#include "util/redact.hpp"

namespace tensorinit::cache {
namespace {

constexpr size_t kPiece = 1 << 20;

std::string join(const std::string& dir, const std::string& rel) { return rel.empty() ? dir : dir + "/" + rel; }

Status walk_into(const std::string& root, const std::string& rel, Tree& tree) {
  const std::string path = join(root, rel);
  DIR* d = ::opendir(path.c_str());
  if (!d) return fail(errno == ENOENT ? Code::no_source : Code::io, fmt::format("{}: {}", path, std::strerror(errno)));
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    std::string_view name = e->d_name;
    if (name == "." || name == "..") continue;
    if (rel.empty() && name == kRecordName) continue;
    names.emplace_back(name);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  for (const auto& name : names) {
    if (tree.entries.size() >= kMaxEntries)
      return fail(Code::bad_data, fmt::format("{}: more than {} entries", root, kMaxEntries));
    TreeEntry entry{.path = rel.empty() ? name : rel + "/" + name};
    struct stat st;
    if (::lstat(join(root, entry.path).c_str(), &st) != 0) {
      if (errno == ENOENT) continue;  // removed since the listing
      return fail(Code::io, fmt::format("{}: {}", join(root, entry.path), std::strerror(errno)));
    }
    entry.perm = st.st_mode & 0777;
    entry.mtime = st.st_mtim.tv_sec;
    if (S_ISREG(st.st_mode)) {
      entry.size = static_cast<uint64_t>(st.st_size);
      tree.bytes += entry.size;
      tree.entries.push_back(std::move(entry));
    } else if (S_ISDIR(st.st_mode)) {
      entry.type = EntryType::directory;
      std::string sub = entry.path;
      tree.entries.push_back(std::move(entry));
      if (auto ok = walk_into(root, sub, tree); !ok && ok.error().code != Code::no_source) return ok;
    } else if (S_ISLNK(st.st_mode)) {
      entry.type = EntryType::symlink;
      std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
      ssize_t n = ::readlink(join(root, entry.path).c_str(), target.data(), target.size());
      if (n < 0 || static_cast<size_t>(n) >= target.size()) continue;  // changed since lstat
      target.resize(static_cast<size_t>(n));
      if (!link_stays_inside(entry.path, target)) {
        ++tree.skipped;
        continue;
      }
      entry.link = std::move(target);
      tree.entries.push_back(std::move(entry));
    } else {
      ++tree.skipped;
    }
  }
  return {};
}

}  // namespace

std::optional<std::string> safe_relative_path(std::string_view path) {
  if (path.empty() || path.front() == '/' || path.find('\0') != std::string_view::npos) return std::nullopt;
  std::string out;
  for (auto part : std::views::split(path, '/')) {
    const std::string_view segment(part.begin(), part.end());
    if (segment.empty() || segment == ".") continue;
    if (segment == "..") return std::nullopt;
    if (!out.empty()) out += '/';
    out += segment;
  }
  if (out.empty()) return std::nullopt;
  return out;
}

bool link_stays_inside(std::string_view entry_path, std::string_view target) {
  if (target.empty() || target.front() == '/' || target.find('\0') != std::string_view::npos) return false;
  // Depth of the directory holding the link, then walk the target's segments. A '..' counts only
  // before the first name: the kernel resolves "x/.." as the parent of what x points to, so with
  // x -> "." (inside) the target "x/.." is the cache's parent, although it reads as inside. Leading
  // '..' climb the real directories holding the link (SECURE_SYMLINKS: none of them is a link).
  int depth = static_cast<int>(std::count(entry_path.begin(), entry_path.end(), '/'));
  bool named = false;
  for (auto part : std::views::split(target, '/')) {
    const std::string_view segment(part.begin(), part.end());
    if (segment.empty() || segment == ".") continue;
    if (segment == ".." && named) return false;
    named = named || segment != "..";
    depth += segment == ".." ? -1 : 1;
    if (depth < 0) return false;
  }
  return true;
}

Result<Tree> walk(const std::string& dir) {
  Tree tree;
  if (auto ok = walk_into(dir, "", tree); !ok) return std::unexpected(ok.error());
  return tree;
}

void ContentHash::begin(const TreeEntry& entry) {
  std::string head = fmt::format("{}{}{}{:o}{}{}{}", static_cast<char>(entry.type), entry.path, '\0', entry.perm,
                                 '\0', entry.type == EntryType::symlink ? entry.link : std::to_string(entry.size), '\0');
  sha_.update(std::as_bytes(std::span(head)));
}

std::string ContentHash::finish() { return to_hex(sha_.finish()); }

namespace {

// Opens `dir/rel` one component at a time, none of them a symlink (O_NOFOLLOW on each): a
// directory the server swapped for a link since the walk fails with ELOOP or ENOTDIR rather than
// lead the read (of tensorinit, often root) out of the cache. `dir` itself may be a link.
UniqueFd open_beneath(const std::string& dir, const std::string& rel) {
  UniqueFd at(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  size_t start = 0;
  while (at) {
    const size_t slash = rel.find('/', start);
    const std::string name = rel.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    if (slash == std::string::npos) return UniqueFd(::openat(at.get(), name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    at = UniqueFd(::openat(at.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    start = slash + 1;
  }
  return at;
}

}  // namespace

Status read_entry(const std::string& dir, const TreeEntry& entry, std::stop_token stop,
                  const std::function<Status(std::span<const std::byte>)>& piece) {
  const std::string path = printable(join(dir, entry.path));
  UniqueFd fd = open_beneath(dir, entry.path);
  if (!fd) return fail(Code::bad_data, fmt::format("{}: changed while saving ({})", path, std::strerror(errno)));
  std::vector<std::byte> buffer(std::min<uint64_t>(kPiece, std::max<uint64_t>(entry.size, 1)));
  uint64_t done = 0;
  for (;;) {
    if (stop.stop_requested()) return fail(Code::stopped, "stopped");
    ssize_t n = ::read(fd.get(), buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(Code::io, fmt::format("{}: {}", path, std::strerror(errno)));
    if (n == 0) break;
    done += static_cast<uint64_t>(n);
    if (done > entry.size) break;
    if (auto ok = piece(std::span(buffer.data(), static_cast<size_t>(n))); !ok) return ok;
  }
  if (done != entry.size)
    return fail(Code::bad_data, fmt::format("{}: changed while saving (was {} bytes, now {})", path, entry.size, done));
  return {};
}

Result<std::string> hash_tree(const std::string& dir, const Tree& tree, std::stop_token stop) {
  ContentHash hash;
  for (const auto& entry : tree.entries) {
    hash.begin(entry);
    if (entry.type != EntryType::file) continue;
    auto ok = read_entry(dir, entry, stop, [&](std::span<const std::byte> piece) -> Status {
      hash.data(piece);
      return {};
    });
    if (!ok) return std::unexpected(ok.error());
  }
  return hash.finish();
}

std::string record_json(const Record& record) {
  nlohmann::json j = {{"version", 1}, {"cache", record.cache}, {"sha256", record.sha256},
                      {"files", record.files}, {"bytes", record.bytes}};
  return j.dump() + "\n";
}

Result<Record> parse_record(std::string_view text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return fail(Code::bad_data, "the record is not JSON");
  try {
    if (j.at("version").get<int>() != 1) return fail(Code::bad_data, "the record's version is not 1");
    Record r{.cache = j.at("cache").get<std::string>(), .sha256 = j.at("sha256").get<std::string>(),
             .files = j.at("files").get<uint64_t>(), .bytes = j.at("bytes").get<uint64_t>()};
    if (r.sha256.size() != 64) return fail(Code::bad_data, "the record's sha256 is not 64 hex digits");
    return r;
  } catch (const nlohmann::json::exception&) {
    return fail(Code::bad_data, "the record lacks version, cache, sha256, files or bytes");
  }
}

}  // namespace tensorinit::cache
