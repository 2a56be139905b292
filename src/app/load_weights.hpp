// The weights path shared by `load` and `run`: plan, index, stage, tensor table, report.
#pragma once

#include <optional>
#include <stop_token>
#include <string>

#include "app/phases.hpp"
#include "manifest/manifest.hpp"
#include "plan/decision.hpp"
#include "stage/stage.hpp"

namespace tensorinit::app {

struct LoadedWeights {
  plan::Decision decision;
  stage::StagedModel staged;
  std::string table_path;  // written atomically
};

// Where the tensor table goes: beside the arenas, `<shm_dir>/tensorinit-<model>.json`.
std::string table_path_for(const manifest::Manifest& manifest, const std::string& shm_dir = "/dev/shm");

// Decides, stages and writes the table. On failure nothing is left in /dev/shm; `decision` keeps
// what was decided, for the report.
Result<LoadedWeights> load_weights(const manifest::Manifest& manifest, std::stop_token stop, Phases& phases,
                                   std::optional<plan::Decision>& decision);

// The report (contract): written atomically to `path` (skipped when empty). A report that cannot
// be written is a warning, never a reason to fail a good load.
void write_report(const std::string& path, const manifest::Manifest& manifest, const LoadedWeights* loaded,
                  const std::optional<plan::Decision>& decision, const Error* error, const Phases& phases);

// One line for stderr: what was staged, how fast, and the phase timings.
std::string summary_line(const LoadedWeights& loaded, const Phases& phases);

}  // namespace tensorinit::app
