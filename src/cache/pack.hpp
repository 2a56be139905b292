// Archiving a cache directory: tar (pax) + zstd through libarchive, entries in walk order, the
// record last. Thread-safe (each call has its own archive handle).
#pragma once

#include <cstdint>
#include <stop_token>
#include <string>

#include "cache/archive_library.hpp"
#include "cache/content.hpp"
#include "util/error.hpp"

namespace tensorinit::cache {

struct Packed {
  Record record;
  uint64_t skipped = 0;  // sockets, FIFOs, devices left out
};

// Writes the archive of `tree` (walked from `dir`) to `fd` (not closed, not synced), hashing what
// it reads; the record names `cache_name`. Code::bad_data when a file changed size since the
// walk, Code::io on a write error, Code::stopped when `stop` fires. The caller discards the output
// on any error.
Result<Packed> pack(const ArchiveApi& api, const std::string& dir, const Tree& tree, const std::string& cache_name,
                    int fd, std::stop_token stop);

}  // namespace tensorinit::cache
