// `tensorinit run [-f MANIFEST] [--grace D] [--group] [-- COMMAND...]`: the ENTRYPOINT.
#include <linux/close_range.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fmt/format.h>

#include "app/commands.hpp"
#include "app/load_session.hpp"
#include "app/output_paths.hpp"
#include "app/startup_caches.hpp"
#include "manifest/expand.hpp"
#include "init/exec.hpp"
#include "init/run_flags.hpp"
#include "init/supervisor.hpp"
#include "util/ioprio.hpp"
#include "util/log.hpp"

namespace tensorinit::app {
namespace {

constexpr const char* kHelp = R"(usage: tensorinit run [-f MANIFEST] [--grace DURATION] [--group] [-- COMMAND [ARG...]]

The container ENTRYPOINT. With a manifest (-f or TENSORINIT_MANIFEST) it stages the
weights, then hands off as handoff.mode says: exec (stage, then run the server),
signal (start the server early, signal it when the weights are ready) or none (stage
and exit 0). Without a manifest it is a plain init. Either way, while it supervises
it forwards signals, reaps zombies and exits with the server's code (128+N if killed
by signal N). COMMAND overrides handoff.command.

  --grace DURATION  time helpers get after SIGTERM before SIGKILL (default: the
                    manifest's handoff.grace, else 10s)
  --group           forward signals to the server's whole process group
)";

using manifest::HandoffMode;

// ${TENSORINIT_MODEL_DIR}, ${TENSORINIT_TABLE}, ${TENSORINIT_SOURCE} in the command are known
// only once the source is chosen; the manifest parser leaves them for us.
std::vector<std::string> expand_handoff_vars(std::vector<std::string> argv,
                                             const std::vector<std::pair<std::string, std::string>>& env) {
  const manifest::EnvLookup lookup = [&](const std::string& name) -> std::optional<std::string> {
    for (const auto& [n, v] : env)
      if (n == name) return v;
    return std::nullopt;
  };
  for (auto& arg : argv) arg = manifest::substitute_handoff_variables(arg, lookup);
  return argv;
}

// exec(2) the server in place of tensorinit (not PID 1: someone else is the init). The name lock
// travels with it: the server holds the model name as long as it lives. Returns only when it did
// not exec (126/127, or 128+N for a stop signal that arrived while staging), with the error.
Error exec_server(const std::vector<std::string>& argv, const std::vector<std::pair<std::string, std::string>>& env,
                  const init::InheritedSignals& inherited, stage::NameLock& lock) {
  return init::exec_in_place({.argv = argv, .env = env, .keep_fds = {lock.fd()}}, inherited);
}

using init::RunFlags;

// A save after the server's clean exit gets at most this long: the container is ending, and a
// cache is only an optimisation (a stop signal ends it sooner).
constexpr std::chrono::seconds kSaveAtExitBound{60};

// After the server: on-exit saves (clean exit only), on-ready saves still running, the report.
void save_caches_at_exit(StartupCaches& caches, LoadSession& session, int code) {
  if (caches.empty()) return;
  if (code == 0) {
    caches.start_save(manifest::CacheSave::on_exit);
    caches.start_save(manifest::CacheSave::on_ready);  // never ready (no handoff.ready): saved now
  }
  caches.wait_saved(kSaveAtExitBound);
  session.report_again();
}

// handoff.ready.file, else `ready` beside the report (none without a report).
std::string ready_file_for(const manifest::Manifest& m) {
  if (m.handoff.ready == manifest::ReadyProbe::none) return "";
  if (m.handoff.ready_file) return *m.handoff.ready_file;
  if (m.report.empty()) return "";
  return (std::filesystem::path(m.report).parent_path() / "ready").string();
}

init::ReadyWatch ready_watch(const manifest::Handoff& h) {
  init::ReadyWatch watch{.timeout = h.ready_timeout};
  if (h.ready == manifest::ReadyProbe::socket) watch.by = init::ReadyWatch::By::socket;
  if (h.ready == manifest::ReadyProbe::http || h.ready == manifest::ReadyProbe::tcp) {
    watch.by = init::ReadyWatch::By::probe;
    watch.probe = {.http = h.ready == manifest::ReadyProbe::http, .host = h.ready_host, .port = h.ready_port,
                   .path = h.ready_path};
  }
  return watch;
}

init::RestartPolicy restart_policy(const manifest::Handoff& h) {
  using When = init::RestartPolicy::When;
  const When when = h.restart == manifest::Restart::always       ? When::always
                    : h.restart == manifest::Restart::on_failure ? When::on_failure
                                                                  : When::never;
  return {.when = when, .max_restarts = h.max_restarts, .first_delay = h.restart_delay,
          .max_delay = h.restart_delay_max};
}

// The supervisor's events: the session's (timeline, report, ready file, weights check); at each
// ready, the caches with save: on-ready.
init::Events server_events(LoadSession& session, StartupCaches& caches) {
  init::Events events;
  events.spawned = [&session](pid_t pid, unsigned restart) { session.server_spawned(pid, restart); };
  events.ready = [&session, &caches] {
    session.server_ready();
    caches.start_save(manifest::CacheSave::on_ready);
  };
  events.exited = [&session](int code, bool restarting) { session.server_exited(code, restarting); };
  events.check_before_restart = [&session] { return session.check_weights(); };
  events.failed = [&session](const Error& error) { session.server_failed(error); };
  return events;
}

// Signal mode hands TENSORINIT_MODEL_DIR out before staging (the server starts with it): the
// model.cache directory, for a remote model written through. When a file of this load's could not
// be committed there, that directory may hold an older, unrecorded copy: no server is told the
// weights are ready with it (Code::io). Only incomplete (another replica still filling, a cache
// that could not be written at all): a warning, as those files are not there under their names.
Status check_model_dir(const LoadedWeights& loaded, const std::vector<std::pair<std::string, std::string>>& env) {
  const auto given = std::ranges::find(env, std::string("TENSORINIT_MODEL_DIR"), &std::pair<std::string, std::string>::first);
  if (given == env.end() || given->second == loaded.model_dir) return {};
  const std::string what = fmt::format("model.cache: {} does not hold the whole model (see the warning above), and the "
                                       "server was started with TENSORINIT_MODEL_DIR naming it", given->second);
  if (loaded.cache_failed)
    return fail(Code::io, what + ": it may hold an older copy, so nothing was handed off (free or fix the cache, "
                                 "or use handoff.mode: exec, which points the server at the remote instead)");
  log::warn(what + " (the weights in the table are complete)");
  return {};
}

}  // namespace

// Signal mode: decide first (headers only: milliseconds), so the server starts knowing
// TENSORINIT_MODEL_DIR; then stage on the supervisor's worker while the server imports. The
// plan stops on TERM/INT/HUP/QUIT like exec mode's (128+N), before any child exists.
Result<int> run_signal_mode(LoadSession& session, StartupCaches& caches, const RunFlags& flags,
                            std::vector<std::string> command, const init::InheritedSignals& inherited) {
  const manifest::Manifest& m = session.manifest();
  std::optional<stage::CudaStartup> cuda;
  Result<const plan::Decision*> decided = fail(Code::internal, "not decided");
  // Remote sources opened by the plan keep the token they were opened with for every later read:
  // it must fire on a stop signal during the plan and on the supervisor's stop during staging.
  std::stop_source remote_stop;
  {
    const std::stop_token stop = session.watch_signals();
    std::stop_callback planning(stop, [&] { remote_stop.request_stop(); });
    if (auto owned = session.own_name(); !owned) return std::unexpected(session.fail(owned.error()));
    caches.start_restore(stop);  // overlaps the plan; done before the server starts
    cuda.emplace(m.stage.target, m.stage.devices);  // context creation overlaps the plan and index phases
    decided = session.decide(remote_stop.get_token());
    caches.wait_restored();
    if (session.stop_watching() != 0 && decided) decided = fail(Code::stopped, "stopped by a signal while planning");
  }
  if (!decided) return std::unexpected(session.fail(decided.error()));
  const bool restarts = m.handoff.restart != manifest::Restart::never;
  session.set_ready_file(ready_file_for(m));
  const auto env = handoff_env(m, **decided, session.shm_dir());
  init::SignalHandoff handoff{
      .stage = [&](std::stop_token stop) -> Status {
        std::stop_callback staging(stop, [&] { remote_stop.request_stop(); });
        // The server starts now too: its own start-up reads go first, the readers (created by this
        // thread, so of its class) take the disk when it is free (util/ioprio.hpp; measured in
        // docs/notes/light.md).
        std::optional<ScopedIoPriority> yield;
        if (m.handoff.start == manifest::StartWhen::early) yield.emplace(IoPriority{.cls = IoClass::idle});
        if (restarts)  // the digest is of the bytes as staged, taken before the arena has a name
          if (auto ok = session.guard_weights(); !ok) return std::unexpected(session.fail(ok.error()));
        if (auto ok = session.stage(**decided, stop, &*cuda); !ok) return std::unexpected(session.fail(ok.error()));
        if (auto ok = check_model_dir(*session.loaded(), env); !ok) return std::unexpected(session.fail(ok.error()));
        session.succeed();
        return {};
      },
      .start_early = m.handoff.start == manifest::StartWhen::early,
      .ready_signal = m.handoff.signal,
      .socket_path = socket_path_for(m, session.shm_dir()),
      .table = [&session] { return session.loaded() ? session.loaded()->table : std::string(); }};
  init::Options options{.command = expand_handoff_vars(std::move(command), env), .env = env,
                        .grace = flags.grace.value_or(m.handoff.grace), .group = flags.group, .handoff = &handoff,
                        .ready = ready_watch(m.handoff), .restart = restart_policy(m.handoff),
                        .events = server_events(session, caches)};
  const int code = init::supervise(options, inherited);
  session.report_unless_done(code);
  save_caches_at_exit(caches, session, code);
  return code;  // the arenas and the table go with the session, then the name
}

Result<int> run_run(Args& args, const init::InheritedSignals& inherited) {
  if (args.flag("--help") || args.flag("-h")) return std::fputs(kHelp, stdout), 0;
  auto flags = init::parse_run_flags(args);
  if (!flags) return std::unexpected(flags.error());
  if (!flags->manifest) return init::run_plain_init(*flags, inherited);

  Phases phases;
  auto m = phases.time("manifest", [&] { return read_manifest(*flags->manifest); });
  if (!m) return std::unexpected(m.error());
  // Before anything is written or removed (the session's failure report included).
  for (const auto& [what, path] : {std::pair{"report", m->report}, std::pair{"handoff.ready.file", ready_file_for(*m)}})
    if (auto ok = check_output_path(what, path, *m, shm_dir_from_env()); !ok) return std::unexpected(ok.error());
  StartupCaches caches(*m);  // outlives the session, which reports on it
  LoadSession session(*m, m->report, std::move(phases));
  session.set_caches(&caches);
  const auto command = flags->command.empty() ? m->handoff.command : flags->command;
  if (m->handoff.mode != HandoffMode::none && command.empty())
    return std::unexpected(session.fail(
        Error{Code::usage, fmt::format("{}: handoff.command is empty and no COMMAND was given after '--'", m->file)}));
  if (m->handoff.mode == HandoffMode::signal) return run_signal_mode(session, caches, *flags, command, inherited);

  if (auto loaded = session.load(); !loaded) return std::unexpected(session.fail(loaded.error()));
  session.succeed();
  if (m->handoff.mode == HandoffMode::none) {
    session.keep();
    return 0;
  }
  const auto env = handoff_env(*m, *session.loaded()->decision, session.shm_dir(), session.loaded()->model_dir);
  const auto argv = expand_handoff_vars(command, env);
  if (::getpid() != 1) {
    if (caches.saves(manifest::CacheSave::on_exit) || caches.saves(manifest::CacheSave::on_ready))
      log::warn("caches are not saved: tensorinit is not PID 1, so it execs the server and is gone when the "
                "server is ready or exits (run it as the ENTRYPOINT, or use handoff.mode: signal)");
    session.keep();
    // Returns only when the exec failed: no server runs on these weights, so they go (fail()).
    return std::unexpected(session.fail(exec_server(argv, env, inherited, session.name_lock())));
  }
  // As PID 1 we stay the init (zombies, signals) and own the arenas until the server exits.
  init::Options options{.command = argv, .env = env, .grace = flags->grace.value_or(m->handoff.grace),
                        .group = flags->group};
  const int code = init::supervise(options, inherited);
  save_caches_at_exit(caches, session, code);
  return code;
}

}  // namespace tensorinit::app
