// The record of one file in the write-through cache (model.cache): "<file>.tensorinit.json",
// holding where the file came from (url, redacted), the version (etag) and its exact size. The
// record is the cache's commit marker: written (atomically, fsynced) only after the file's data
// is durable under its final name, removed before a fill starts. stage/cache_fill writes it;
// plan/ and app/ read it to decide whether a cached file may be trusted.
#pragma once

#include <cstdint>
#include <string>

#include "util/error.hpp"

namespace tensorinit::io {

struct CacheRecord {
  std::string url;   // the object's URL, redacted (never a signature or token)
  std::string etag;  // as the server sent it; empty when it sent none
  uint64_t size = 0;

  bool operator==(const CacheRecord&) const = default;
};

// "<file_path>.tensorinit.json". Thread-safe (pure).
std::string cache_record_path(const std::string& file_path);

// Errors: Code::no_source (absent, unreadable), Code::bad_data (not a record). Thread-safe.
Result<CacheRecord> read_cache_record(const std::string& file_path);

// Writes the record atomically and durably (util/atomic_file). Errors: Code::io. Thread-safe for
// distinct files; callers hold the file's fill lock (stage/cache_fill.hpp).
Status write_cache_record(const std::string& file_path, const CacheRecord& record);

// Removes the record, durably (its directory is fsynced) when there was one: from here on the
// file is not trusted. Thread-safe for distinct files.
void remove_cache_record(const std::string& file_path);

}  // namespace tensorinit::io
