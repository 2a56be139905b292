#include "app/cli.hpp"

#include <cstdio>
#include <fmt/format.h>
#include <string_view>

#include "app/commands.hpp"
#include "util/exit_code.hpp"

namespace tensorinit::app {
namespace {

constexpr const char* kUsage = R"(usage: tensorinit <command> [options]

Stages model weights at container start, then hands off to the inference server.

commands:
  run     [-f MANIFEST] [--grace DURATION] [--group] [-- COMMAND [ARG...]]
          stage the weights (if a manifest is given) and run the server as PID 1
  plan    -f MANIFEST [--json]          which source would be used and why
  load    -f MANIFEST [--report PATH] [--keep]
          stage, report, exit (what cold-start benchmarks call)
  inspect [--json] PATH                 list the tensors of a file or model directory
  synth   --size SIZE [--dtype bf16|f16|f32] [--shards N] [--format F] [--seed N] [--tensors N] OUTDIR
          write a synthetic model with realistic contents
  pack    IN OUT [--frame-size SIZE] [--level N] [--split-bytes]
          compressed, seekable copy of a safetensors file (zstd seekable format)

-f may be replaced by the environment variable TENSORINIT_MANIFEST.
Every command takes --help. Exit codes: see README.md.
)";

Result<int> dispatch(std::string_view verb, Args& args, const init::InheritedSignals& inherited) {
  if (verb == "run") return run_run(args, inherited);
  if (verb == "load") return run_load(args);
  // The other verbs do no supervision: Ctrl-C should simply stop them, and what was ignored
  // (`trap '' HUP`, nohup) stays ignored.
  init::restore_inherited_signals(inherited);
  if (verb == "plan") return run_plan(args);
  if (verb == "inspect") return run_inspect(args);
  if (verb == "synth") return run_synth(args);
  if (verb == "pack") return run_pack(args);
  return fail(Code::usage, fmt::format("unknown command '{}' (see tensorinit --help)", verb));
}

}  // namespace

int main(int argc, char** argv, const init::InheritedSignals& inherited) {
  if (argc < 2) {
    std::fputs(kUsage, stderr);
    return static_cast<int>(Code::usage);
  }
  const std::string_view verb = argv[1];
  if (verb == "--help" || verb == "-h" || verb == "help") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (verb == "--version") {
    std::printf("tensorinit %s\n", TENSORINIT_VERSION);
    return 0;
  }
  Args args(std::string(verb), std::vector<std::string>(argv + 2, argv + argc));
  return exit_code_of([&] { return dispatch(verb, args, inherited); });
}

}  // namespace tensorinit::app
