// One start-up cache's restore and save (contract "caches"), on plain structs: the app converts
// the manifest entry. A cache is an optimisation, never a reason to fail the start: both return
// an outcome to log and report, never an error. Thread-safe: each call touches only its cache.
#pragma once

#include <cstdint>
#include <memory>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "cache/store.hpp"

namespace tensorinit::cache {

struct CacheSpec {
  std::string name;
  std::string path;  // absolute
  uint64_t max_size = 4ull << 30;
  std::vector<std::shared_ptr<const Store>> stores;  // in the manifest's order
};

// What became of a restore (restored | missing | refused | kept | failed | stopped) or a save
// (saved | unchanged | refused | failed | stopped). The logs, timeline events and the report name
// it by to_string.
enum class State { restored, missing, kept, saved, unchanged, refused, failed, stopped };
std::string_view to_string(State state);

struct Outcome {
  State state = State::failed;
  std::string where;       // the archive restored from or saved to; empty when none
  std::string message;     // one line for stderr and the report (names no secret)
  uint64_t files = 0;      // entries
  uint64_t bytes = 0;      // file bytes unpacked or archived
  uint64_t archive_bytes = 0;
  double seconds = 0;
  std::string sha256;      // the content hash restored or saved
};

// Makes `path` (mkdir -p) and unpacks the first store's archive into it. A directory that is not
// empty is kept as it is ("kept": never overwritten or emptied). Refused or corrupt archives
// leave it empty ("refused"); no archive anywhere is a first start ("missing").
Outcome restore(const CacheSpec& cache, std::stop_token stop);

// Archives `path` into the first store that can be written, unless its content hash equals
// `restored_sha256` ("unchanged") or it holds more than max_size ("refused").
Outcome save(const CacheSpec& cache, const std::string& restored_sha256, std::stop_token stop);

}  // namespace tensorinit::cache
