// `tensorinit load -f MANIFEST [--report PATH] [--keep]`: stage, report, exit.
#include <cstdio>
#include <cstdlib>
#include <fmt/format.h>

#include "app/commands.hpp"
#include "app/load_weights.hpp"
#include "app/stop_signals.hpp"
#include "util/log.hpp"

namespace tensorinit::app {
namespace {

constexpr const char* kHelp = R"(usage: tensorinit load -f MANIFEST [--report PATH] [--keep]

Stages the weights as the manifest says, writes the report (to --report PATH, else
the manifest's `report`), prints one summary line and exits: no handoff. This is what
cold-start benchmarks call. The host arena and tensor table are removed on exit unless
--keep is given (then they stay in /dev/shm for a server started separately).
)";

}  // namespace

Result<manifest::Manifest> read_manifest(const std::string& path) { return manifest::parse_file(path); }

Result<std::optional<std::string>> manifest_path(Args& args) {
  auto f = args.option("-f");
  if (!f) return f;
  if (*f) return f;
  if (const char* env = std::getenv("TENSORINIT_MANIFEST"); env && *env) return std::optional<std::string>(env);
  return std::optional<std::string>();
}

Result<int> run_load(Args& args) {
  if (args.flag("--help") || args.flag("-h")) return std::fputs(kHelp, stdout), 0;
  const bool keep = args.flag("--keep");
  auto report_flag = args.option("--report");
  if (!report_flag) return std::unexpected(report_flag.error());
  auto path = manifest_path(args);
  if (!path) return std::unexpected(path.error());
  if (auto rest = args.positionals(0, 0); !rest) return std::unexpected(rest.error());
  if (!*path) return fail(Code::usage, "load: -f MANIFEST (or TENSORINIT_MANIFEST) is required");
  Phases phases;
  auto m = phases.time("manifest", [&] { return read_manifest(**path); });
  if (!m) return std::unexpected(m.error());
  const std::string report_path = report_flag->value_or(m->report);

  StopOnSignal stop;
  std::optional<plan::Decision> decision;
  auto loaded = load_weights(*m, stop.token(), phases, decision);
  if (!loaded) {
    Error error = loaded.error();
    if (stop.signal()) error = Error{static_cast<Code>(128 + stop.signal()), "stopped by a signal while staging"};
    write_report(report_path, *m, nullptr, decision, &error, phases);
    return std::unexpected(error);
  }
  if (keep) {
    for (auto& arena : loaded->staged.arenas) arena.keep();
  } else {
    ::unlink(loaded->table_path.c_str());
  }
  write_report(report_path, *m, &*loaded, decision, nullptr, phases);
  log::info(summary_line(*loaded, phases));
  return 0;
}

}  // namespace tensorinit::app
