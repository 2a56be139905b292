#include "app/load_session.hpp"

#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>

#include "manifest/signals.hpp"
#include "util/atomic_file.hpp"
#include "util/units.hpp"
#include "util/log.hpp"

namespace tensorinit::app {

LoadSession::LoadSession(const manifest::Manifest& manifest, std::string report_path, Phases phases)
    : manifest_(manifest), report_(std::move(report_path)), shm_dir_(shm_dir_from_env()),
      phases_(std::move(phases)) {}

LoadSession::~LoadSession() {
  stop_.reset();
  remove_ready_file();
  if (loaded_ && !keep_) ::unlink(loaded_->table_path.c_str());
  loaded_.reset();  // the arenas (unless kept), then the name (lock_, a member)
}

std::stop_token LoadSession::watch_signals() {
  if (!stop_) stop_ = std::make_unique<StopOnSignal>();
  return stop_->token();
}

int LoadSession::stop_watching() {
  if (stop_) {
    if (int s = stop_->finish()) signal_ = s;
    stop_.reset();
  }
  return signal_;
}

Status LoadSession::own_name() {
  if (lock_.held()) return {};
  auto lock = stage::NameLock::acquire(shm_dir_, manifest_.model.name);
  if (!lock) return std::unexpected(lock.error());
  lock_ = std::move(*lock);
  // What an earlier owner published (kept by load --keep or handoff none, or left by one that was
  // killed) is withdrawn before this load starts anything: a server started early finds this
  // load's table or none. (A server that mapped the old arena keeps its bytes.)
  // So are litter of an owner that was killed (never trusted; only the lock's holder makes them):
  // a table's temporary (it died writing it), the ready socket (signal mode; none listens on it).
  ::unlink(table_path_for(manifest_, shm_dir_).c_str());
  remove_stale_temporaries(table_path_for(manifest_, shm_dir_));
  ::unlink(socket_path_for(manifest_, shm_dir_).c_str());
  ::unlink(stage::arena_path(shm_dir_, manifest_.model.name, 0).c_str());
  stage::remove_stale_partials(shm_dir_, manifest_.model.name);
  return {};
}

Result<const plan::Decision*> LoadSession::decide(std::stop_token stop) {
  return decide_source(manifest_, phases_, decision_, stop);
}

Status LoadSession::stage(const plan::Decision& decision, std::stop_token stop, stage::CudaStartup* cuda) {
  if (!lock_.held()) return tensorinit::fail(Code::internal, "staging without owning the model name");
  std::function<Status(const stage::ShmArena&)> seal;
  if (guard_) seal = [this](const stage::ShmArena& arena) { return guard_->seal(arena); };
  auto staged = stage_weights(manifest_, decision, stop, phases_, cuda, shm_dir_, std::move(seal));
  if (!staged) return std::unexpected(staged.error());
  loaded_ = std::move(*staged);
  if (guard_) {  // taken inside the stage phase, before publish: reported apart
    phases_.add("stage", -guard_->seconds());
    phases_.add("digest", guard_->seconds());
  }
  phases_.mark("weights_ready");
  if (keep_) keep(true);
  return {};
}

Status LoadSession::load() {
  const std::stop_token stop = watch_signals();
  if (caches_) caches_->start_restore(stop);  // in parallel with the load, before the server starts
  if (auto owned = own_name(); !owned) return owned;
  stage::CudaStartup cuda(manifest_.stage.target, manifest_.stage.devices);  // context creation overlaps the plan and index phases
  auto decided = decide(stop);
  if (!decided) return std::unexpected(decided.error());
  auto staged = stage(**decided, stop, &cuda);
  if (caches_) caches_->wait_restored();
  if (stop_watching() != 0 && staged)  // finished anyway: the operator asked to stop all the same
    return tensorinit::fail(Code::stopped, "stopped by a signal while staging");
  return staged;
}

void LoadSession::succeed() {
  if (loaded_) log::info(summary_line(*loaded_, phases_));
  report(nullptr);
}

Error LoadSession::fail(Error error) {
  stop_watching();
  if (signal_ != 0)
    error = Error{static_cast<Code>(128 + signal_),
                  fmt::format("stopped by {} {}", manifest::signal_name(signal_),
                              loaded_ ? "after staging, before the handoff" : "before the weights were staged")};
  if (!failed_) report(&error);  // with what was staged, if anything: then it goes
  failed_ = true;
  keep(false);
  if (loaded_) ::unlink(loaded_->table_path.c_str());
  loaded_.reset();
  return error;
}

void LoadSession::report_unless_done(int exit_code) {
  remove_ready_file();
  if (reported_ && !failed_ && (server_was_ready_ || server_.restarts > 0)) report(nullptr);
  if (reported_ || exit_code == 0) return;
  fail(Error{static_cast<Code>(exit_code),
             fmt::format("tensorinit ended with exit code {} before the weights were staged", exit_code)});
}

void LoadSession::keep(bool yes) {
  keep_ = yes;
  if (loaded_)
    for (auto& arena : loaded_->staged.arenas) arena.keep(yes);
}

void LoadSession::report_again() {
  if (reported_ && !failed_) report(nullptr);
}

void LoadSession::report(const Error* error) {
  write_report(report_, manifest_, loaded_ ? &*loaded_ : nullptr, decision_, error, phases_, server_,
               caches_ && !caches_->empty() ? caches_->report() : nlohmann::json());
  reported_ = true;
}

void LoadSession::server_spawned(pid_t, unsigned restart) {
  phases_.mark(restart == 0 ? "server_spawned" : "server_restarted");
  server_.restarts = restart;
}

void LoadSession::server_exited(int code, bool restarting) {
  phases_.mark("server_exited");
  remove_ready_file();
  (void)code, (void)restarting;
}

void LoadSession::server_failed(const Error& error) {
  remove_ready_file();
  report(&error);
  failed_ = true;
}

void LoadSession::server_ready() {
  const double at = phases_.mark("server_ready");
  const double spawned = std::max(phases_.last("server_spawned"), phases_.last("server_restarted"));
  const double weights = phases_.last("weights_ready");
  if (server_was_ready_) {  // a restarted server: how long the restart took, exit to ready
    log::info(fmt::format("ready again after restart {}: {:.3f}s from the server's exit to its successor's ready",
                          server_.restarts, at - phases_.last("server_exited")));
    report(nullptr);
    write_ready_file(at);
    return;
  }
  server_was_ready_ = true;
  server_.ready = at;
  server_.server = at - std::max(spawned, weights);
  report(nullptr);
  log::info(fmt::format("ready {:.3f}s after the process start: start-up {:.3f}s, {}; server spawned at {:.3f}s, "
                        "weights ready at {:.3f}s, then the server {:.3f}s to answer",
                        at, phases_.startup(), phases_.summary(), spawned, weights, *server_.server));
  write_ready_file(at);  // last: whoever sees the file finds the report and the line written
}

void LoadSession::write_ready_file(double at) {
  if (ready_file_.empty()) return;
  const std::string text = fmt::format("{{\"ready\": true, \"seconds\": {:.3f}, \"restarts\": {}}}\n", at, server_.restarts);
  if (auto ok = ready_file_.write(text); !ok)
    log::warn(fmt::format("ready file not written: {}", ok.error().message));
}

void LoadSession::set_ready_file(std::string path) {
  ready_file_ = OutputFile(std::move(path));
  remove_ready_file();  // one left by an earlier start would say ready too early
}

void LoadSession::remove_ready_file() {
  ready_file_.remove();
}

Status LoadSession::guard_weights() {
  if (loaded_) return tensorinit::fail(Code::internal, "the weights are guarded before they are staged (the digest "
                                                       "is taken before the arena is published)");
  guard_.emplace();
  return {};
}

Status LoadSession::check_weights() {
  if (!loaded_ || !guard_) return tensorinit::fail(Code::internal, "restarting on weights that were not guarded");
  const auto start = Phases::Clock::now();
  auto ok = guard_->check(*loaded_);
  const double seconds = std::chrono::duration<double>(Phases::Clock::now() - start).count();
  server_.restart_check_seconds += seconds;
  if (ok)
    log::info(fmt::format("restart: {} of staged weights checked unchanged in {:.3f}s", format_bytes(guard_->bytes()),
                          seconds));
  return ok;
}

}  // namespace tensorinit::app
