// A readable, fixed-size run of bytes (a weight file, a remote object, a packed file's decoded
// bytes). Like leveldb's RandomAccessFile: read_at is positional, so one source serves many reader
// threads.
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
  // (O_DIRECT); 1 means reads of any shape are served alike. The pipeline reads every chunk into
  // a reader's aligned staging buffer from the chunk start aligned down to this, a file's
  // unaligned tail on its own (stage/pipeline.cpp). Fixed for the life of the source. Thread-safe.
  virtual uint64_t alignment() const { return 1; }
};

}  // namespace tensorinit::io
