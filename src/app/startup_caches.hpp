// The manifest's `caches:` for one run (contract "caches"): each restored on its own thread from
// before the plan until just before the server starts, and saved on-ready (on its own thread: the
// server never waits) or on-exit (after a clean exit, bounded). Every outcome is one line on
// stderr and an entry of the report's "caches". Thread-safety: one owning thread calls the
// methods; restores and saves run on threads of their own, joined by this object.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <optional>
#include <memory>
#include <mutex>
#include <nlohmann/json_fwd.hpp>
#include <stop_token>
#include <thread>
#include <vector>

#include "cache/startup_cache.hpp"
#include "manifest/manifest.hpp"

namespace tensorinit::app {

// How long a restore may still run once the server could start: 30 s + max_size at 8 MiB/s (a 4 GiB
// cache: 542 s), unless TENSORINIT_CACHE_RESTORE_BOUND (a duration; for tests, not a contract
// key) says otherwise. Without it, a remote that keeps the minimum rate (25.6 KiB/s at the
// default stall_timeout) held the server's start for as long as the archive took: 46 hours for
// 4 GiB. Sets `rule` to how it was chosen. Not thread-safe (getenv).
std::chrono::milliseconds restore_bound(uint64_t max_size, std::string& rule);

class StartupCaches {
 public:
  explicit StartupCaches(const manifest::Manifest& manifest);
  ~StartupCaches();  // stops and joins what still runs
  StartupCaches(const StartupCaches&) = delete;
  StartupCaches& operator=(const StartupCaches&) = delete;

  bool empty() const { return caches_.empty(); }

  // Called (from the restore and save threads, so it must be thread-safe) with "cache NAME
  // restored", "cache NAME saved" (the outcome's state) as each ends: the report's timeline.
  void on_event(std::function<void(const std::string&)> event) { event_ = std::move(event); }

  // Starts every restore (no-op without caches); wait_restored() joins them and logs each outcome.
  // `stop` (a stop signal) ends them, as does destruction: the directories are left empty.
  void start_restore(std::stop_token stop);
  // Called when the server could start: gives each restore still running at most its bound
  // (restore_bound) more, then stops it ("too slow": its directory left empty, the server starts).
  void wait_restored();

  // Starts the saves of the caches whose save mode is `when`, each on its own thread.
  void start_save(manifest::CacheSave when);
  // Waits for the saves started, at most `bound` (or until TERM, INT, HUP or QUIT arrives); those
  // still running are stopped (what they wrote is discarded) and reported "stopped".
  void wait_saved(std::chrono::milliseconds bound);
  // Whether a cache saves `when`.
  bool saves(manifest::CacheSave when) const;

  // [{"name", "path", "restore": {...}, "save": {...}}]; Outcome fields, seconds included.
  nlohmann::json report() const;

 private:
  struct Entry {
    cache::CacheSpec spec;
    manifest::CacheSave save = manifest::CacheSave::never;
    std::optional<cache::Outcome> restored, saved;
    std::chrono::milliseconds restore_bound{0};
    std::string bound_rule;         // how restore_bound was chosen, for the "too slow" message
    std::stop_source restore_stop;  // a stop signal, destruction, or the bound passed
    std::jthread restore_thread, save_thread;
  };
  void stop_restores();
  std::vector<std::unique_ptr<Entry>> caches_;
  std::stop_source save_stop_;
  std::stop_token signal_stop_;  // start_restore's
  std::optional<std::stop_callback<std::function<void()>>> restore_on_signal_;
  mutable std::mutex mutex_;  // guards restored and saved (written by the threads)
  std::condition_variable restored_cv_, saved_cv_;
  std::function<void(const std::string&)> event_;
};

}  // namespace tensorinit::app
