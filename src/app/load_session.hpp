// One load of `load` or `run`, from the manifest read to the exit or the handoff. It owns what a
// load needs to end well on every path: the model name's lock, the phases, the decision, what
// was staged (arenas and table), the stop signals, and the report, which it writes once per
// outcome: at success, and at the first failure (a failure after success, an exec that failed,
// rewrites it: the server never ran on those weights).
//
// Destruction order is the cleanup order: the table and the arenas are removed unless kept, then
// the name is released. Thread-safety: one thread at a time (signal mode stages on the
// supervisor's worker while the main thread waits in supervise, which joins it).
#pragma once

#include <sys/types.h>

#include <memory>
#include <optional>
#include <stop_token>
#include <string>

#include "app/arena_guard.hpp"
#include "app/load_weights.hpp"
#include "app/phases.hpp"
#include "app/startup_caches.hpp"
#include "app/report.hpp"
#include "app/stop_signals.hpp"
#include "manifest/manifest.hpp"
#include "plan/decision.hpp"
#include "stage/cuda_startup.hpp"
#include "stage/name_lock.hpp"
#include "util/output_file.hpp"

namespace tensorinit::app {

class LoadSession {
 public:
  LoadSession(const manifest::Manifest& manifest, std::string report_path, Phases phases);
  ~LoadSession();
  LoadSession(const LoadSession&) = delete;
  LoadSession& operator=(const LoadSession&) = delete;

  const manifest::Manifest& manifest() const { return manifest_; }
  const std::string& shm_dir() const { return shm_dir_; }
  Phases& phases() { return phases_; }

  // From now until stop_watching(), TERM, INT, HUP and QUIT stop the load (they stay blocked and
  // pending otherwise, for the supervisor). The token is the one to pass to decide and stage.
  std::stop_token watch_signals();
  // Ends the watch; the signal that arrived (0 when none). One that arrived is remembered: fail()
  // turns the error into 128+N, and a load that finished anyway must not hand off (stopped()).
  int stop_watching();
  bool stopped() const { return signal_ != 0; }

  // Takes the model name in shm_dir (before any arena, table or socket of it exists): a second
  // instance gets Code::unavailable naming the holder.
  Status own_name();
  // plan and index (remote candidates are probed: `stop` ends their retries).
  // The decision is the session's own (it stays until the session ends).
  Result<const plan::Decision*> decide(std::stop_token stop);
  // stage and table for the decided source; `cuda` (started before the plan) is waited for.
  Status stage(const plan::Decision& decision, std::stop_token stop, stage::CudaStartup* cuda);
  // own_name, decide and stage, watching the signals throughout (load, exec mode).
  Status load();

  // Success: the report, and the summary line on stderr.
  void succeed();
  // Failure: drops what was staged (unless kept), writes the report and returns the error to exit
  // with (128+N when a stop signal arrived). Logs nothing: the caller prints the one error line.
  Error fail(Error error);
  // After supervise: a session that never reported (the supervisor stopped before staging ended,
  // or could not start) reports the exit code it got; one whose server was ready or restarted
  // rewrites its report with the final counts. The ready file goes.
  void report_unless_done(int exit_code);

  // The run's start-up caches (not owned; must outlive the session): load() restores them while
  // it stages and joins them before it returns; the report carries their outcomes.
  void set_caches(StartupCaches* caches) { caches_ = caches; }
  // After a successful session's server ended (caches saved): the report again, same outcome.
  void report_again();
  // The server's life (run, signal mode), called on the supervisor's loop (init::Events).
  void server_spawned(pid_t pid, unsigned restart);  // the timeline
  // The timeline, the report rewritten with seconds.ready, the ready file, one line on stderr.
  void server_ready();
  void server_exited(int code, bool restarting);  // the timeline; the ready file goes
  // tensorinit failed the start (not ready in time, a restart refused): the report says so. What
  // was staged goes with the session, once the server is stopped.
  void server_failed(const Error& error);
  // Written (atomically) at each ready, removed when the server exits and at the end; "": none.
  void set_ready_file(std::string path);

  // Restart without reload (app/arena_guard.hpp): called before stage(), which then digests each
  // host arena before it is published (a server started early cannot have written it yet);
  // check_weights compares before each restart.
  Status guard_weights();
  Status check_weights();

  const LoadedWeights* loaded() const { return loaded_ ? &*loaded_ : nullptr; }
  // Leaves the arenas and the table in shm_dir after the session (load --keep, handoff none,
  // exec); keep(false) takes it back.
  void keep(bool yes = true);
  stage::NameLock& name_lock() { return lock_; }

 private:
  void report(const Error* error);
  void remove_ready_file();
  void write_ready_file(double seconds);

  const manifest::Manifest& manifest_;
  OutputFile report_;  // its directory opened at construction, before any server (util/output_file.hpp)
  std::string shm_dir_;
  Phases phases_;
  stage::NameLock lock_;  // declared before loaded_: released after the arenas and the table are gone
  std::optional<plan::Decision> decision_;
  std::optional<LoadedWeights> loaded_;
  std::unique_ptr<StopOnSignal> stop_;
  StartupCaches* caches_ = nullptr;
  std::optional<ArenaGuard> guard_;
  ServerFacts server_;
  OutputFile ready_file_;
  bool server_was_ready_ = false;
  int signal_ = 0;
  bool keep_ = false;
  bool reported_ = false;
  bool failed_ = false;
};

}  // namespace tensorinit::app
