// What a restart without reload checks before the next server starts on the staged weights
// (handoff.restart). A crashed or hostile server may have written to the host arena through a
// writable mapping (mode bits do not stop root), replaced its name in /dev/shm, or rewritten the
// tensor table: each is found here, and the restart refused, before a server maps the weights.
//
// - Host arenas: a digest of every byte, taken once staging is done and before the arena has a
//   name (stage::StageRequest::before_publish: a server started early could otherwise write it
//   between publish and digest, and every restart would check against its bytes), compared at
//   each restart: XXH3-128 with a random 64-bit seed drawn per run (not in the
//   report, the table or the logs), over 8 MiB blocks spread on the usable cores. A seeded
//   non-cryptographic hash: any accidental scribble is found; a server that wants to forge a
//   collision must first learn the seed from tensorinit's memory. The published name must still
//   be the staged inode.
// - The tensor table is rewritten from the text staged (a server may have changed the file): the
//   text tensorinit wrote (LoadedWeights::table, in memory), never read back from shm_dir.
// - Device memory (target cuda) is not digested: the IPC handles give the server write access and
//   reading it back costs a device-to-host copy; the allocation and handles stay as they were.
// - target pagecache: the tensors are the files the table names (LoadedWeights::served_files: the
//   local sources, or a remote model's copies in model.cache), which the restarted server reads
//   again: each must still be the file staged, through its descriptor and its path (device,
//   inode, size, mtime, ctime: FileSource::check_unchanged, check_path), else Code::bad_data.
//
// Thread-safety: none (seal on the staging thread, check on the loop's, never at once).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "app/load_weights.hpp"
#include "stage/shm_arena.hpp"
#include "util/error.hpp"

namespace tensorinit::app {

class ArenaGuard {
 public:
  ArenaGuard();  // draws the seed
  // Digests one host arena as staged, before it is published (Code::io when it cannot be mapped).
  Status seal(const stage::ShmArena& arena);
  double seconds() const { return seconds_; }  // spent in seal
  // Code::bad_data naming what changed; rewrites the table from loaded.table.
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
  double seconds_ = 0;
  std::vector<Arena> arenas_;
};

// XXH3-128 of `fd`'s first `bytes` with `seed`, hashed in blocks over `threads` threads (blocks'
// digests are combined in order). Code::io when the file cannot be mapped. Thread-safe.
Result<std::array<uint64_t, 2>> digest_file(int fd, uint64_t bytes, uint64_t seed, unsigned threads);

}  // namespace tensorinit::app
