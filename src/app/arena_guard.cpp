#include "app/arena_guard.hpp"

#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>

#define XXH_INLINE_ALL  // header-only: no library to link (libxxhash-dev)
#include <fmt/format.h>
#include <xxhash.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <atomic>
#include <thread>

#include "io/file_source.hpp"
#include "util/atomic_file.hpp"
#include "util/cpu.hpp"
#include "util/log.hpp"

namespace tensorinit::app {
namespace {

constexpr uint64_t kBlock = 8ull << 20;

// The cores this container may use (affinity and cgroup quota, not the host's count), at most 8.
unsigned usable_threads() { return std::min(usable_cores(), 8u); }

uint64_t random_seed() {
  uint64_t seed = 0;
  if (::getrandom(&seed, sizeof seed, 0) != sizeof seed) seed = static_cast<uint64_t>(::time(nullptr)) * 0x9E3779B97F4A7C15ull;
  return seed;
}


}  // namespace

Result<std::array<uint64_t, 2>> digest_file(int fd, uint64_t bytes, uint64_t seed, unsigned threads) {
  if (bytes == 0) return std::array<uint64_t, 2>{seed, 0};
  void* map = ::mmap(nullptr, bytes, PROT_READ, MAP_SHARED, fd, 0);
  if (map == MAP_FAILED) return fail(Code::io, fmt::format("cannot map the arena to digest it: {}", std::strerror(errno)));
  const auto* data = static_cast<const unsigned char*>(map);
  const uint64_t blocks = (bytes + kBlock - 1) / kBlock;
  std::vector<XXH128_hash_t> digests(blocks);
  std::atomic<uint64_t> next{0};
  auto work = [&] {
    for (uint64_t b = next++; b < blocks; b = next++) {
      const uint64_t at = b * kBlock;
      digests[b] = XXH3_128bits_withSeed(data + at, std::min(kBlock, bytes - at), seed + b);
    }
  };
  std::vector<std::thread> pool;
  for (unsigned i = 1; i < std::min<uint64_t>(threads, blocks); ++i) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  ::munmap(map, bytes);
  const XXH128_hash_t all = XXH3_128bits_withSeed(digests.data(), digests.size() * sizeof digests[0], seed);
  return std::array<uint64_t, 2>{all.low64, all.high64};
}

ArenaGuard::ArenaGuard() : seed_(random_seed()) {}

Status ArenaGuard::seal(const stage::ShmArena& arena) {
  const auto start = std::chrono::steady_clock::now();
  struct stat st {};
  if (::fstat(arena.fd(), &st) != 0) return fail(Code::io, "cannot stat the arena " + arena.path());
  auto digest = digest_file(arena.fd(), arena.size(), seed_, usable_threads());
  if (!digest) return std::unexpected(digest.error());
  arenas_.push_back({arena.path(), static_cast<uint64_t>(st.st_ino), *digest});  // the inode keeps its number when linked
  bytes_ += arena.size();
  seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return {};
}

Status ArenaGuard::check(const LoadedWeights& loaded) const {
  if (arenas_.size() != loaded.staged.arenas.size())
    return fail(Code::internal, fmt::format("{} host arenas staged but {} digested before publish",
                                            loaded.staged.arenas.size(), arenas_.size()));
  for (size_t i = 0; i < arenas_.size(); ++i) {
    const auto& arena = loaded.staged.arenas[i];
    struct stat st {};
    if (::stat(arenas_[i].path.c_str(), &st) != 0 || static_cast<uint64_t>(st.st_ino) != arenas_[i].inode)
      return fail(Code::bad_data, fmt::format("{} is no longer the arena tensorinit staged (removed or replaced while "
                                              "the server ran): not restarting on it", arenas_[i].path));
    // Truncated by the server (root ignores mode 0444): mapping the missing pages would end
    // tensorinit with SIGBUS, leaving the arena behind (test_attack_restart).
    if (::fstat(arena.fd(), &st) != 0 || static_cast<uint64_t>(st.st_size) < arena.size())
      return fail(Code::bad_data, fmt::format("the arena {} was truncated while the server ran: not restarting on it",
                                              arenas_[i].path));
    auto digest = digest_file(arena.fd(), arena.size(), seed_, usable_threads());
    if (!digest) return std::unexpected(digest.error());
    if (*digest != arenas_[i].digest)
      return fail(Code::bad_data, fmt::format("{} changed while the server ran (its digest differs from the staged "
                                              "one: written through a writable mapping?): not restarting on it",
                                              arenas_[i].path));
  }
  // target pagecache: the table names the files (local sources, or a remote model's copies in
  // model.cache), which the restarted server reads again. A file replaced under its path or
  // rewritten since it was staged would give it other bytes at the table's offsets (it did:
  // test_attack8_pagecache_restart.sh; the cache's copies: test_attack9_pagecache_cache_restart.sh).
  for (const auto& f : loaded.served_files) {
    if (!f) return fail(Code::internal, "a pagecache file without its descriptor");
    auto ok = f->check_unchanged();
    if (ok) ok = f->check_path();
    if (!ok)
      return fail(Code::bad_data, fmt::format("{}; not restarting on it (target pagecache: the server reads the "
                                              "tensors from these files, and this one changed while it ran)",
                                              ok.error().message));
  }
  auto table = read_whole_file(loaded.table_path, "tensor table");  // a FIFO there is refused, not waited on
  if (!table || *table != loaded.table) {
    log::warn(fmt::format("the tensor table {} was changed or removed while the server ran: written again",
                          loaded.table_path));
    if (auto ok = write_file_atomically(loaded.table_path, loaded.table); !ok) return ok;
  }
  return {};
}

}  // namespace tensorinit::app
