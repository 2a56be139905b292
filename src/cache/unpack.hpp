// Restoring a cache directory from an archive pack() wrote, refusing anything hostile: absolute
// paths, "..", links that leave the directory, hard links, devices, FIFOs, duplicate entries,
// more than max_size unpacked, a zip-bomb ratio, an archive without its record as the last entry
// (a torn or foreign archive), and contents whose hash differs from the record's. On any refusal
// or error the directory is left empty. Thread-safe (each call has its own handles).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <stop_token>
#include <string>

#include "cache/archive_library.hpp"
#include "cache/content.hpp"
#include "io/byte_source.hpp"
#include "util/error.hpp"

namespace tensorinit::cache {

struct UnpackLimits {
  uint64_t max_size = 4ull << 30;  // file bytes unpacked, in all
  // Refused once more than `ratio_floor` bytes are unpacked at more than `max_ratio` bytes per
  // archive byte read. Compiled-kernel caches measured 3-10x with zstd; zeros reach 10000x.
  double max_ratio = 1000;
  uint64_t ratio_floor = 64ull << 20;
  uint32_t prefetch = 1;           // reads in flight (remote sources: several, each a ranged GET)
  uint64_t chunk = 8ull << 20;     // bytes per read
};

struct Unpacked {
  Record record;
  uint64_t archive_bytes = 0;  // compressed bytes read
};

// Unpacks `archive` into `dir`, which must exist and be empty. Code::bad_data for a refused or
// corrupt archive (the message says which entry and why), Code::io for a local write error,
// the source's error for a failed read, Code::stopped when `stop` fires.
Result<Unpacked> unpack(const ArchiveApi& api, const io::ByteSource& archive, const std::string& dir,
                        const UnpackLimits& limits, std::stop_token stop);

// Removes everything below `dir` (not dir itself), never following symlinks. Best effort.
void empty_directory(const std::string& dir);

// Whether `dir` exists and holds nothing; false on any error.
bool directory_is_empty(const std::string& dir);

}  // namespace tensorinit::cache
