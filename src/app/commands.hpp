// One function per verb. Each returns the process exit code or an Error for main's one catch.
#pragma once

#include "app/args.hpp"
#include "init/supervisor.hpp"
#include "manifest/manifest.hpp"

namespace tensorinit::app {

Result<int> run_synth(Args& args);
Result<int> run_inspect(Args& args);
Result<int> run_pack(Args& args);
Result<int> run_plan(Args& args);
Result<int> run_load(Args& args);
Result<int> run_run(Args& args, const init::InheritedSignals& inherited);

// -f, else $TENSORINIT_MANIFEST, else nullopt.
Result<std::optional<std::string>> manifest_path(Args& args);
Result<manifest::Manifest> read_manifest(const std::string& path);

}  // namespace tensorinit::app
