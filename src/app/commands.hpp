// One function per verb. Each returns the process exit code or an Error for main's one catch.
#pragma once

#include "init/run_flags.hpp"
#include "init/supervisor.hpp"
#include "manifest/manifest.hpp"

namespace tensorinit::app {

Result<int> run_synth(Args& args);
Result<int> run_inspect(Args& args);
Result<int> run_pack(Args& args);
Result<int> run_plan(Args& args);
Result<int> run_load(Args& args);
Result<int> run_run(Args& args, const init::InheritedSignals& inherited);

using init::manifest_path;  // -f, else $TENSORINIT_MANIFEST
Result<manifest::Manifest> read_manifest(const std::string& path);

}  // namespace tensorinit::app
