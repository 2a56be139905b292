#include "app/startup_caches.hpp"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "app/cache_remote.hpp"
#include "app/load_weights.hpp"
#include "app/output_paths.hpp"
#include "app/stop_signals.hpp"
#include "util/log.hpp"
#include "util/units.hpp"

namespace tensorinit::app {
namespace {

// A directory under a local source, an archive object under a remote one; saved to where the type's
// row allows it (util/source_type.hpp cache_writable).
std::shared_ptr<const cache::Store> store_for(const manifest::Source& source, const std::string& name) {
  if (is_remote(source.type)) return remote_cache_store(source, name);
  return cache::directory_store(source.path, name, source_type_info(source.type).cache_writable);
}

nlohmann::json outcome_json(const cache::Outcome& o) {
  nlohmann::json j = {{"state", cache::to_string(o.state)}, {"seconds", o.seconds}, {"message", o.message}};
  if (!o.where.empty()) j["archive"] = o.where;
  if (o.files || o.bytes) {
    j["files"] = o.files;
    j["bytes"] = o.bytes;
  }
  if (o.archive_bytes) j["archive_bytes"] = o.archive_bytes;
  if (!o.sha256.empty()) j["sha256"] = o.sha256;
  return j;
}

void log_outcome(const std::string& name, const std::string& what, const cache::Outcome& o) {
  using cache::State;
  const bool trouble = o.state == State::refused || o.state == State::failed || o.state == State::stopped;
  if (trouble) log::warn(fmt::format("cache {}: {} {}: {}", name, what, cache::to_string(o.state), o.message));
  else log::info(fmt::format("cache {}: {}", name, o.message));
}

// Why the cache at `path` is neither restored nor saved, "" when it may be. A cache that is or
// holds the arenas' directory would be restored (names overwritten), or emptied after a refused
// archive, beside the load and other instances' arenas, and its save would archive them; one that
// holds or lies in a local weight source or model.cache would mix its files with the weights (symlinks
// resolved).
std::string overlap(const std::string& path, const manifest::Manifest& m, const std::string& shm_dir) {
  const auto cache = resolved(path);
  if (holds(cache, resolved(shm_dir)))
    return fmt::format("{} is or holds {}, where the arenas live: neither restored nor saved", path, shm_dir);
  for (const auto& source : m.model.sources) {
    if (is_remote(source.type)) continue;
    const auto weights = resolved(source.path);
    if (holds(cache, weights) || holds(weights, cache))
      return fmt::format("{} overlaps the weight source {}: neither restored nor saved", path, source.path);
  }
  // model.cache holds remote weights with the records that make the next start trust them: a
  // restore (beside the plan) or a save would carry whatever weights the cache's writers put there.
  if (!m.model.cache.empty()) {
    const auto written_through = resolved(m.model.cache);
    if (holds(cache, written_through) || holds(written_through, cache))
      return fmt::format("{} overlaps model.cache {}: neither restored nor saved", path, m.model.cache);
  }
  return "";
}

}  // namespace

std::chrono::milliseconds restore_bound(uint64_t max_size, std::string& rule) {
  if (const char* env = std::getenv("TENSORINIT_CACHE_RESTORE_BOUND"); env && *env)
    if (auto bound = parse_duration(env)) {
      rule = "TENSORINIT_CACHE_RESTORE_BOUND";
      return *bound;
    }
  constexpr uint64_t kRate = 8ull << 20;  // bytes per second
  rule = "30 s + max_size at 8 MiB/s";
  return std::chrono::seconds(30) + std::chrono::milliseconds(max_size / (kRate / 1000));
}

StartupCaches::StartupCaches(const manifest::Manifest& manifest) {
  const std::string shm_dir = shm_dir_from_env();
  for (const auto& c : manifest.caches) {
    auto entry = std::make_unique<Entry>();
    entry->spec = {.name = c.name, .path = c.path, .max_size = c.max_size};
    for (const auto& source : c.sources) entry->spec.stores.push_back(store_for(source, c.name));
    entry->save = c.save;
    entry->restore_bound = restore_bound(c.max_size, entry->bound_rule);
    if (std::string why = overlap(c.path, manifest, shm_dir); !why.empty()) {
      cache::Outcome refused{.state = cache::State::refused, .message = why};
      log_outcome(c.name, "restore", refused);
      entry->restored = std::move(refused);
      entry->save = manifest::CacheSave::never;
    }
    caches_.push_back(std::move(entry));
  }
}

void StartupCaches::stop_restores() {
  for (auto& c : caches_) c->restore_stop.request_stop();
}

StartupCaches::~StartupCaches() {
  stop_restores();
  save_stop_.request_stop();
  for (auto& c : caches_) {
    if (c->restore_thread.joinable()) c->restore_thread.join();
    if (c->save_thread.joinable()) c->save_thread.join();
  }
}

void StartupCaches::start_restore(std::stop_token stop) {
  if (caches_.empty()) return;
  signal_stop_ = stop;
  restore_on_signal_.emplace(stop, std::function<void()>([this] { stop_restores(); }));
  for (auto& c : caches_) {
    Entry* e = c.get();
    if (e->restored) continue;  // refused before it began (overlap)
    e->restore_thread = std::jthread([this, e, token = e->restore_stop.get_token()] {
      cache::Outcome o = cache::restore(e->spec, token);
      if (event_) event_(fmt::format("cache {} {}", e->spec.name, cache::to_string(o.state)));
      std::lock_guard lock(mutex_);
      e->restored = std::move(o);
      restored_cv_.notify_all();
    });
  }
}

void StartupCaches::wait_restored() {
  const auto ready = std::chrono::steady_clock::now();
  for (auto& c : caches_) {
    if (!c->restore_thread.joinable()) continue;
    bool too_slow = false;
    {
      std::unique_lock lock(mutex_);
      too_slow = !restored_cv_.wait_until(lock, ready + c->restore_bound, [&] { return c->restored.has_value(); });
    }
    if (too_slow) c->restore_stop.request_stop();  // the unpack sees it between reads and empties the directory
    c->restore_thread.join();
    std::lock_guard lock(mutex_);
    if (!c->restored) continue;
    if (too_slow && c->restored->state == cache::State::stopped && !signal_stop_.stop_requested())
      c->restored->message = fmt::format(
          "too slow: not restored within {:.1f}s of the weights being ready ({}); the server starts with an empty {}",
          std::chrono::duration<double>(c->restore_bound).count(), c->bound_rule, c->spec.path);
    log_outcome(c->spec.name, "restore", *c->restored);
  }
  restore_on_signal_.reset();
}

bool StartupCaches::saves(manifest::CacheSave when) const {
  for (const auto& c : caches_)
    if (c->save == when) return true;
  return false;
}

void StartupCaches::start_save(manifest::CacheSave when) {
  for (auto& c : caches_) {
    if (c->save != when || c->save_thread.joinable()) continue;
    Entry* e = c.get();
    std::string restored_sha;
    {
      std::lock_guard lock(mutex_);
      if (e->restored && e->restored->state == cache::State::restored) restored_sha = e->restored->sha256;
    }
    e->save_thread = std::jthread([this, e, restored_sha, stop = save_stop_.get_token()] {
      cache::Outcome o = cache::save(e->spec, restored_sha, stop);
      log_outcome(e->spec.name, "save", o);
      if (event_) event_(fmt::format("cache {} {}", e->spec.name, cache::to_string(o.state)));
      std::lock_guard lock(mutex_);
      e->saved = std::move(o);
      saved_cv_.notify_all();
    });
  }
}

void StartupCaches::wait_saved(std::chrono::milliseconds bound) {
  const auto deadline = std::chrono::steady_clock::now() + bound;
  StopOnSignal signals;  // TERM (say, the orchestrator's) ends the saves rather than waiting out the bound
  std::stop_callback on_signal(signals.token(), [this] {
    std::lock_guard lock(mutex_);
    save_stop_.request_stop();
    saved_cv_.notify_all();
  });
  for (auto& c : caches_) {
    if (!c->save_thread.joinable()) continue;
    {
      std::unique_lock lock(mutex_);
      if (!saved_cv_.wait_until(lock, deadline, [&] { return c->saved.has_value() || save_stop_.stop_requested(); }))
        save_stop_.request_stop();  // the save sees it between pieces and discards its partial
    }
    c->save_thread.join();
  }
}

nlohmann::json StartupCaches::report() const {
  std::lock_guard lock(mutex_);
  nlohmann::json list = nlohmann::json::array();
  for (const auto& c : caches_) {
    nlohmann::json j = {{"name", c->spec.name}, {"path", c->spec.path}, {"save_when", manifest::to_string(c->save)}};
    if (c->restored) j["restore"] = outcome_json(*c->restored);
    if (c->saved) j["save"] = outcome_json(*c->saved);
    list.push_back(std::move(j));
  }
  return list;
}

}  // namespace tensorinit::app
