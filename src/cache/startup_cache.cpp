#include "cache/startup_cache.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fmt/format.h>

#include "cache/archive_library.hpp"
#include "cache/content.hpp"
#include "cache/pack.hpp"
#include "cache/unpack.hpp"
#include "util/fd.hpp"
#include "util/units.hpp"

namespace tensorinit::cache {
namespace {

using Clock = std::chrono::steady_clock;

// Present in a cache directory while a restore writes into it.
constexpr std::string_view kRestoringMarker = ".tensorinit-restoring";

Outcome finish(Outcome o, Clock::time_point start) {
  o.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return o;
}

Outcome with(State state, std::string message) {
  Outcome o;
  o.state = state;
  o.message = std::move(message);
  return o;
}

}  // namespace

std::string_view to_string(State state) {
  switch (state) {
    case State::restored: return "restored";
    case State::missing: return "missing";
    case State::kept: return "kept";
    case State::saved: return "saved";
    case State::unchanged: return "unchanged";
    case State::refused: return "refused";
    case State::failed: return "failed";
    case State::stopped: return "stopped";
  }
  return "failed";
}

Outcome restore(const CacheSpec& cache, std::stop_token stop) {
  const auto start = Clock::now();
  std::error_code ec;
  std::filesystem::create_directories(cache.path, ec);
  if (ec) return finish(with(State::failed, fmt::format("{}: {}", cache.path, ec.message())), start);
  // Instances sharing the directory (a host path mounted into several containers) would restore
  // into it at once, and one's refused archive empties the other's files: the first holds it
  // (flock, released when the restore ends); the others keep it as it is.
  UniqueFd held(::open(cache.path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!held || ::flock(held.get(), LOCK_EX | LOCK_NB) != 0)
    return finish(with(State::kept, fmt::format("{} is being restored by another instance: kept as it is, nothing restored",
                                           cache.path)),
                  start);
  // A restore killed midway (SIGKILL, OOM, the node) leaves torn files that the next start would
  // keep as the server's own: the marker says so, and that start empties the directory first.
  const std::string marker = cache.path + "/" + std::string(kRestoringMarker);
  if (::access(marker.c_str(), F_OK) == 0) empty_directory(cache.path);
  if (!directory_is_empty(cache.path))
    return finish(with(State::kept, fmt::format("{} is not empty: kept as it is, nothing restored", cache.path)), start);
  auto api = archive_library();
  if (!api) return finish(with(State::failed, api.error().message), start);

  std::string tried;
  for (const auto& store : cache.stores) {
    auto opened = store->open(stop);
    if (!opened) {
      if (stop.stop_requested()) return finish(with(State::stopped, "stopped by a signal"), start);
      if (opened.error().code != Code::no_source)
        tried += fmt::format("{}{}", tried.empty() ? "" : "; ", opened.error().message);
      continue;
    }
    UnpackLimits limits{.max_size = cache.max_size, .prefetch = store->prefetch()};
    UniqueFd mark(::open(marker.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!mark || ::fsync(mark.get()) != 0)
      return finish(with(State::failed, fmt::format("{}: {}", marker, std::strerror(errno))), start);
    auto unpacked = unpack(**api, **opened, cache.path, limits, stop);
    if (unpacked) ::unlink(marker.c_str());  // a refused one was emptied, the marker with it
    Outcome o;
    o.where = store->name();
    if (!unpacked) {
      const Error& e = unpacked.error();
      o.state = e.code == Code::stopped ? State::stopped : e.code == Code::bad_data ? State::refused : State::failed;
      o.message = fmt::format("{}: {}; the server starts with an empty {}", store->name(), e.message, cache.path);
      return finish(std::move(o), start);
    }
    o.state = State::restored;
    o.files = unpacked->record.files;
    o.bytes = unpacked->record.bytes;
    o.archive_bytes = unpacked->archive_bytes;
    o.sha256 = unpacked->record.sha256;
    o = finish(std::move(o), start);
    o.message = fmt::format("restored {} entries ({}) from {} in {:.2f}s", o.files, format_bytes(o.bytes), o.where,
                            o.seconds);
    return o;
  }
  if (!tried.empty())
    return finish(with(State::failed, fmt::format("no archive could be read ({}); the server starts with an empty {}",
                                             tried, cache.path)),
                  start);
  return finish(with(State::missing, "no archive yet (first start): the server starts with an empty " + cache.path), start);
}

Outcome save(const CacheSpec& cache, const std::string& restored_sha256, std::stop_token stop) {
  const auto start = Clock::now();
  auto tree = walk(cache.path);
  if (!tree) return finish(with(State::failed, tree.error().message), start);
  if (tree->bytes > cache.max_size)
    return finish(with(State::refused, fmt::format("{} holds {}, more than max_size {}: not saved", cache.path,
                                              format_bytes(tree->bytes), format_bytes(cache.max_size))),
                  start);
  if (!restored_sha256.empty()) {
    auto hash = hash_tree(cache.path, *tree, stop);
    if (!hash) return finish(with(hash.error().code == Code::stopped ? State::stopped : State::failed, hash.error().message), start);
    if (*hash == restored_sha256) {
      Outcome o = with(State::unchanged, "unchanged since it was restored: not saved");
      o.sha256 = *hash;
      return finish(std::move(o), start);
    }
  }
  auto api = archive_library();
  if (!api) return finish(with(State::failed, api.error().message), start);
  std::string tried;
  for (const auto& store : cache.stores) {
    auto upload = store->begin(stop);
    if (!upload) {
      tried += fmt::format("{}{}", tried.empty() ? "" : "; ", upload.error().message);
      continue;
    }
    Outcome o;
    o.where = store->name();
    auto packed = pack(**api, cache.path, *tree, cache.name, (*upload)->fd(), stop);
    Status committed = packed ? (*upload)->commit(stop) : Status(std::unexpected(packed.error()));
    if (!committed) {
      o.state = committed.error().code == Code::stopped ? State::stopped : State::failed;
      o.message = fmt::format("{}: {}: not saved", o.where, committed.error().message);
      return finish(std::move(o), start);
    }
    struct stat st;
    o.archive_bytes = ::fstat((*upload)->fd(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
    o.state = State::saved;
    o.files = packed->record.files;
    o.bytes = packed->record.bytes;
    o.sha256 = packed->record.sha256;
    o = finish(std::move(o), start);
    o.message = fmt::format("saved {} entries ({}, {} archived) to {} in {:.2f}s", o.files, format_bytes(o.bytes),
                            format_bytes(o.archive_bytes), o.where, o.seconds);
    if (packed->skipped) o.message += fmt::format(" ({} sockets, FIFOs or devices left out)", packed->skipped);
    return o;
  }
  return finish(with(State::failed, fmt::format("no writable source ({})", tried.empty() ? "none listed" : tried)), start);
}

}  // namespace tensorinit::cache
