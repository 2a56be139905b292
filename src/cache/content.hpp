// What a cache directory holds, as the archive carries it: its entries in a fixed order (depth
// first, names sorted bytewise, a directory before what it holds) and one SHA-256 over them all,
// the same whether computed from the directory (scan, pack) or from an archive (unpack). The
// record, the archive's last entry, carries that hash, so that an unchanged directory is not
// saved again and a restored one is checked byte for byte.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "util/checksum.hpp"
#include "util/error.hpp"

namespace tensorinit::cache {

// The archive's last entry: a JSON record. A top-level file of this name in a cache directory is
// not archived (the name is reserved).
inline constexpr std::string_view kRecordName = ".tensorinit-cache-record.json";

// At most this many entries in a cache, walked or unpacked (inodes are a resource too).
inline constexpr size_t kMaxEntries = 1'000'000;

// "a/./b//c" -> "a/b/c"; nullopt for absolute paths, "..", an empty result, or a NUL.
std::optional<std::string> safe_relative_path(std::string_view path);

// Whether a symlink at `entry_path` (safe, relative) pointing to `target` resolves, lexically,
// inside the directory: relative target, never climbing above the root, '..' only before the first
// name (after one, it would climb out of whatever that name links to).
bool link_stays_inside(std::string_view entry_path, std::string_view target);

enum class EntryType : char { file = 'f', directory = 'd', symlink = 'l' };

struct TreeEntry {
  std::string path;  // relative to the cache directory, '/'-separated, no "." or ".."
  EntryType type = EntryType::file;
  mode_t perm = 0;   // permission bits only (setuid, setgid and sticky are never carried)
  uint64_t size = 0; // file: bytes; others: 0
  int64_t mtime = 0; // seconds
  std::string link;  // symlink: its target as written
};

// The entries of `dir`, not following symlinks; sockets, FIFOs, devices and symlinks that point
// out of the directory (a restore would refuse them) are skipped and counted in `skipped`. Code::io when dir cannot be read; Code::no_source when it is missing.
// Thread-safe (touches only the file system).
struct Tree {
  std::vector<TreeEntry> entries;
  uint64_t bytes = 0;    // sum of file sizes
  uint64_t skipped = 0;  // entries that are none of file, directory, symlink
};
Result<Tree> walk(const std::string& dir);

// Incremental content hash: each entry's type, path, permission bits and size (or link target),
// then a file's bytes. Not thread-safe (one per pass).
class ContentHash {
 public:
  void begin(const TreeEntry& entry);
  void data(std::span<const std::byte> bytes) { sha_.update(bytes); }
  std::string finish();  // lower-case hex; the object is spent

 private:
  Sha256 sha_;
};

// Reads the regular file `dir/entry.path` in pieces (O_NOFOLLOW), handing each to `piece`, and
// checks that it still has entry.size bytes: Code::bad_data when it changed since the walk (a
// file the server is still writing). `stop` is checked between pieces (Code::stopped).
Status read_entry(const std::string& dir, const TreeEntry& entry, std::stop_token stop,
                  const std::function<Status(std::span<const std::byte>)>& piece);

// The content hash of a walked tree (reads every file once). Errors as read_entry.
Result<std::string> hash_tree(const std::string& dir, const Tree& tree, std::stop_token stop);

// The record's JSON, and its parse (Code::bad_data when malformed).
struct Record {
  std::string cache;   // the cache's name
  std::string sha256;  // ContentHash of every entry before the record
  uint64_t files = 0;  // entries before the record
  uint64_t bytes = 0;  // their file bytes
};
std::string record_json(const Record& record);
Result<Record> parse_record(std::string_view text);

}  // namespace tensorinit::cache
