// What a restart without reload checks before the next server starts on the staged weights
// (handoff.restart). A crashed or hostile server may have written to the host arena through a
// writable mapping (mode bits do not stop root), replaced its name in /dev/shm, or rewritten the
// tensor table: each is found here, and the restart refused, before a server maps the weights.
//
// - Host arenas: a digest of every byte, taken right after staging (before any server maps them)
//   and compared at each restart: XXH3-128 with a random 64-bit seed drawn per run (not in the
//   report, the table or the logs), over 8 MiB blocks spread on the usable cores. A seeded
//   non-cryptographic hash: any accidental scribble is found; a server that wants to forge a
//   collision must first learn the seed from tensorinit's memory. The published name must still
//   be the staged inode.
// - The tensor table is rewritten from the text staged (a server may have changed the file).
// - Device memory (target cuda) is not digested: the IPC handles give the server write access and
//   reading it back costs a device-to-host copy; the allocation and handles stay as they were.
// - target pagecache: the tensors are the source files; nothing of tensorinit's to check.
//
// Thread-safety: none (take on the staging thread, check on the loop's, never at once).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "app/load_weights.hpp"
#include "util/error.hpp"

namespace tensorinit::app {

class ArenaGuard {
 public:
  // Digests the host arenas of `loaded` and keeps its table's text.
  static Result<ArenaGuard> take(const LoadedWeights& loaded);
  // Code::bad_data naming what changed; rewrites the table from the kept text.
  Status check(const LoadedWeights& loaded) const;

  uint64_t bytes() const { return bytes_; }  // digested per take or check

 private:
  struct Arena {
    std::string path;
    uint64_t inode = 0;
    std::array<uint64_t, 2> digest{};
  };
  uint64_t seed_ = 0;
  uint64_t bytes_ = 0;
  std::vector<Arena> arenas_;
  std::string table_;
};

// XXH3-128 of `fd`'s first `bytes` with `seed`, hashed in blocks over `threads` threads (blocks'
// digests are combined in order). Code::io when the file cannot be mapped. Thread-safe.
Result<std::array<uint64_t, 2>> digest_file(int fd, uint64_t bytes, uint64_t seed, unsigned threads);

}  // namespace tensorinit::app
