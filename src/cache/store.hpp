// Where a cache's archive lives: one entry of the cache's `sources`. Restore opens the first store
// that has the archive; save writes to the first writable one, through an Upload that publishes
// the archive whole or not at all.
#pragma once

#include <cstdint>
#include <memory>
#include <stop_token>
#include <string>

#include "io/byte_source.hpp"
#include "util/error.hpp"

namespace tensorinit::cache {

// An archive being written. fd() takes the bytes; commit() publishes them (fsync and rename for a
// volume, a signed PUT for s3). Destroyed without a commit, nothing is published and nothing is
// left behind. One thread at a time.
class Upload {
 public:
  virtual ~Upload() = default;
  virtual int fd() const = 0;
  virtual Status commit(std::stop_token stop) = 0;
};

// Thread-safe: open and begin may run on any thread.
class Store {
 public:
  virtual ~Store() = default;
  // What to call the archive in messages and the report (a path, a redacted URL).
  virtual const std::string& name() const = 0;
  // The archive, pinned to the version opened. Code::no_source when there is none (first start).
  virtual Result<std::shared_ptr<const io::ByteSource>> open(std::stop_token stop) const = 0;
  // Reads to keep in flight while unpacking (a remote store's parallel ranged reads).
  virtual uint32_t prefetch() const { return 1; }
  // Code::denied (read only: an image or http source) or the reason it cannot be written now.
  virtual Result<std::unique_ptr<Upload>> begin(std::stop_token stop) const = 0;
};

// A directory (image or volume source): the archive is <dir>/<cache>.tar.zst. A volume is
// written crash-safely: a partial file of a random name (several replicas at once never share
// one), fsync, rename over the archive, fsync of the directory. Partials older than an hour
// (their writer died) are removed when the next save begins.
std::unique_ptr<Store> directory_store(std::string dir, const std::string& cache_name, bool writable);

// The archive's file name: <cache>.tar.zst.
std::string archive_file_name(const std::string& cache_name);

}  // namespace tensorinit::cache
