// A readable, fixed-size run of bytes (a weight file, later a remote object). Like leveldb's
// RandomAccessFile: read_at is positional, so one source serves many reader threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "util/error.hpp"

namespace tensorinit::io {

class ByteSource {
 public:
  virtual ~ByteSource() = default;

  // Size in bytes, fixed for the life of the source. Thread-safe.
  virtual uint64_t size() const = 0;

  // Fills all of `out` from `offset`, or fails: a short read is an error (Code::bad_data when the
  // source ends early, Code::io otherwise). Thread-safe: concurrent calls on one source are allowed.
  virtual Status read_at(uint64_t offset, std::span<std::byte> out) const = 0;

  // What to call the source in messages (a path, a redacted URL). Thread-safe.
  virtual const std::string& name() const = 0;

  // Reads whose offset, length and buffer address are multiples of this go around the page cache
  // (O_DIRECT) and want a staging buffer; 1 means any read is as good as any other, so callers may
  // read straight into the destination. Fixed for the life of the source. Thread-safe.
  virtual uint64_t alignment() const { return 1; }
};

}  // namespace tensorinit::io
