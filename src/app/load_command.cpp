// `tensorinit load -f MANIFEST [--report PATH] [--keep]`: stage, report, exit.
#include <cstdio>
#include <cstdlib>
#include <fmt/format.h>

#include "app/commands.hpp"
#include "app/load_session.hpp"
#include "app/output_paths.hpp"

namespace tensorinit::app {
namespace {

constexpr const char* kHelp = R"(usage: tensorinit load -f MANIFEST [--report PATH] [--keep]

Stages the weights as the manifest says, writes the report (to --report PATH, else
the manifest's `report`), prints one summary line and exits: no handoff. This is what
cold-start benchmarks call. The host arena and tensor table are removed on exit unless
--keep is given (then they stay in /dev/shm, or $TENSORINIT_SHM_DIR, for a server started
separately). While it runs it owns model.name there: another instance with the same name
is refused (exit 69, naming the holder).
)";

}  // namespace

Result<manifest::Manifest> read_manifest(const std::string& path) { return manifest::parse_file(path); }

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
  const std::string report = report_flag->value_or(m->report);
  if (auto ok = check_output_path(*report_flag ? "--report" : "report", report, *m, shm_dir_from_env(),
                                  *report_flag ? Code::usage : Code::bad_manifest);
      !ok)
    return std::unexpected(ok.error());
  LoadSession session(*m, report, std::move(phases));
  if (auto loaded = session.load(); !loaded) return std::unexpected(session.fail(loaded.error()));
  session.keep(keep);  // else the arena and the table go with the session, after the report
  session.succeed();
  return 0;
}

}  // namespace tensorinit::app
