#include "app/load_session.hpp"

#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "manifest/signals.hpp"
#include "util/log.hpp"

namespace tensorinit::app {

LoadSession::LoadSession(const manifest::Manifest& manifest, std::string report_path, Phases phases)
    : manifest_(manifest), report_path_(std::move(report_path)), shm_dir_(shm_dir_from_env()),
      phases_(std::move(phases)) {}

LoadSession::~LoadSession() {
  stop_.reset();
  if (loaded_ && !keep_) ::unlink(loaded_->table_path.c_str());
  loaded_.reset();  // the arenas (unless kept), then the name (lock_, a member)
}

std::stop_token LoadSession::watch_signals() {
  if (!stop_) stop_ = std::make_unique<StopOnSignal>();
  return stop_->token();
}

int LoadSession::stop_watching() {
  if (stop_) {
    if (stop_->signal()) signal_ = stop_->signal();
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
  ::unlink(table_path_for(manifest_, shm_dir_).c_str());
  ::unlink(stage::arena_path(shm_dir_, manifest_.model.name, 0).c_str());
  stage::remove_stale_partials(shm_dir_, manifest_.model.name);
  return {};
}

Result<plan::Decision> LoadSession::decide(std::stop_token stop) {
  return decide_source(manifest_, phases_, decision_, stop);
}

Status LoadSession::stage(const plan::Decision& decision, std::stop_token stop, stage::CudaStartup* cuda) {
  if (!lock_.held()) return tensorinit::fail(Code::internal, "staging without owning the model name");
  auto staged = stage_weights(manifest_, decision, stop, phases_, cuda, shm_dir_);
  if (!staged) return std::unexpected(staged.error());
  loaded_ = std::move(*staged);
  if (keep_) keep(true);
  return {};
}

Status LoadSession::load() {
  const std::stop_token stop = watch_signals();
  if (caches_) caches_->start_restore(stop);  // in parallel with the load, before the server starts
  if (auto owned = own_name(); !owned) return owned;
  stage::CudaStartup cuda(manifest_.stage);  // context creation overlaps the plan and index phases
  auto decided = decide(stop);
  if (!decided) return std::unexpected(decided.error());
  auto staged = stage(*decided, stop, &cuda);
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
  write_report(report_path_, manifest_, loaded_ ? &*loaded_ : nullptr, decision_, error, phases_,
               caches_ && !caches_->empty() ? caches_->report() : nlohmann::json());
  reported_ = true;
}

}  // namespace tensorinit::app
