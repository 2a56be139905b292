// `tensorinit run [-f MANIFEST] [--grace D] [--group] [-- COMMAND...]`: the ENTRYPOINT.
#include <linux/close_range.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fmt/format.h>

#include "app/commands.hpp"
#include "app/load_weights.hpp"
#include "app/stop_signals.hpp"
#include "manifest/expand.hpp"
#include "init/exec.hpp"
#include "util/log.hpp"
#include "util/units.hpp"

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

// exec(2) the server in place of tensorinit (not PID 1: someone else is the init).
int exec_server(const std::vector<std::string>& argv, const std::vector<std::pair<std::string, std::string>>& env,
                const init::InheritedSignals& inherited) {
  const Error error = init::exec_in_place({.argv = argv, .env = env, .keep_fds = {}}, inherited);
  log::error(error.message);
  return error.exit_code();
}

struct RunFlags {
  std::optional<std::string> manifest;
  std::optional<std::chrono::milliseconds> grace;
  bool group = false;
  std::vector<std::string> command;
};

Result<RunFlags> parse_flags(Args& args) {
  RunFlags flags;
  flags.command = args.after_double_dash();
  flags.group = args.flag("--group");
  auto grace = args.option("--grace");
  if (!grace) return std::unexpected(grace.error());
  if (*grace) {
    flags.grace = parse_duration(**grace);
    if (!flags.grace) return fail(Code::usage, fmt::format("run: --grace '{}' is not a duration (e.g. 10s, 500ms)", **grace));
  }
  auto path = manifest_path(args);
  if (!path) return std::unexpected(path.error());
  flags.manifest = *path;
  if (auto rest = args.positionals(0, 0); !rest) return std::unexpected(rest.error());
  return flags;
}

Result<int> run_plain_init(const RunFlags& flags, const init::InheritedSignals& inherited) {
  if (flags.command.empty()) return fail(Code::usage, "run: no manifest and no COMMAND after '--': nothing to run");
  init::Options options{.command = flags.command, .grace = flags.grace.value_or(std::chrono::seconds(10)),
                        .group = flags.group};
  return init::supervise(options, inherited);
}

}  // namespace

// Signal mode: decide first (headers only: milliseconds), so the server starts knowing
// TENSORINIT_MODEL_DIR; then stage on the supervisor's worker while the server imports.
Result<int> run_signal_mode(const manifest::Manifest& m, const RunFlags& flags, std::vector<std::string> command,
                            Phases& phases, const init::InheritedSignals& inherited) {
  stage::CudaStartup cuda(m.stage);  // context creation overlaps the plan and index phases
  std::optional<plan::Decision> decision;
  auto decided = decide_source(m, phases, decision);
  if (!decided) {
    write_report(m.report, m, nullptr, decision, &decided.error(), phases);
    return std::unexpected(decided.error());
  }
  const auto env = handoff_env(m, *decided);
  std::optional<LoadedWeights> loaded;  // owned here: the arenas live until the server exits
  init::SignalHandoff handoff{
      .stage = [&](std::stop_token stop) -> Status {
        auto staged = stage_weights(m, *decided, stop, phases, &cuda);
        if (!staged) {
          write_report(m.report, m, nullptr, decision, &staged.error(), phases);
          return std::unexpected(staged.error());
        }
        loaded = std::move(*staged);
        log::info(summary_line(*loaded, phases));
        write_report(m.report, m, &*loaded, decision, nullptr, phases);
        return {};
      },
      .start_early = m.handoff.start == manifest::StartWhen::early,
      .ready_signal = m.handoff.signal,
      .socket_path = socket_path_for(m),
      .table_path = table_path_for(m)};
  init::Options options{.command = expand_handoff_vars(std::move(command), env), .env = env,
                        .grace = flags.grace.value_or(m.handoff.grace), .group = flags.group, .handoff = &handoff};
  const int code = init::supervise(options, inherited);
  ::unlink(table_path_for(m).c_str());
  return code;
}

Result<int> run_run(Args& args, const init::InheritedSignals& inherited) {
  if (args.flag("--help") || args.flag("-h")) return std::fputs(kHelp, stdout), 0;
  auto flags = parse_flags(args);
  if (!flags) return std::unexpected(flags.error());
  if (!flags->manifest) return run_plain_init(*flags, inherited);

  Phases phases;
  auto m = phases.time("manifest", [&] { return read_manifest(*flags->manifest); });
  if (!m) return std::unexpected(m.error());
  const auto command = flags->command.empty() ? m->handoff.command : flags->command;
  if (m->handoff.mode != HandoffMode::none && command.empty())
    return fail(Code::usage, fmt::format("{}: handoff.command is empty and no COMMAND was given after '--'", m->file));
  if (m->handoff.mode == HandoffMode::signal) return run_signal_mode(*m, *flags, command, phases, inherited);

  std::optional<plan::Decision> decision;
  Result<LoadedWeights> loaded = fail(Code::internal, "not loaded");
  {
    StopOnSignal stop;
    loaded = load_weights(*m, stop.token(), phases, decision);
    if (!loaded && stop.signal()) loaded = fail(static_cast<Code>(128 + stop.signal()), "stopped by a signal while staging");
  }
  if (!loaded) {
    write_report(m->report, *m, nullptr, decision, &loaded.error(), phases);
    return std::unexpected(loaded.error());
  }
  log::info(summary_line(*loaded, phases));
  write_report(m->report, *m, &*loaded, decision, nullptr, phases);
  if (m->handoff.mode == HandoffMode::none) {
    for (auto& arena : loaded->staged.arenas) arena.keep();
    return 0;
  }
  const auto env = handoff_env(*m, loaded->decision);
  const auto argv = expand_handoff_vars(command, env);
  if (::getpid() != 1) {
    for (auto& arena : loaded->staged.arenas) arena.keep();
    return exec_server(argv, env, inherited);
  }
  // As PID 1 we stay the init (zombies, signals) and own the arenas until the server exits.
  init::Options options{.command = argv, .env = env, .grace = flags->grace.value_or(m->handoff.grace),
                        .group = flags->group};
  const int code = init::supervise(options, inherited);
  ::unlink(loaded->table_path.c_str());
  return code;
}

}  // namespace tensorinit::app
