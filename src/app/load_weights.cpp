#include "app/load_weights.hpp"

#include <fmt/format.h>

#include "app/progress.hpp"
#include "plan/local_environment.hpp"
#include "util/atomic_file.hpp"
#include "util/log.hpp"
#include "util/units.hpp"

namespace tensorinit::app {

std::string table_path_for(const manifest::Manifest& manifest, const std::string& shm_dir) {
  return fmt::format("{}/tensorinit-{}.json", shm_dir, manifest.model.name);
}

std::string socket_path_for(const manifest::Manifest& manifest, const std::string& shm_dir) {
  return fmt::format("{}/tensorinit-{}.sock", shm_dir, manifest.model.name);
}

Result<plan::Decision> decide_source(const manifest::Manifest& manifest, Phases& phases,
                                     std::optional<plan::Decision>& decision) {
  plan::LocalEnvironment env;
  decision = phases.time("plan", [&] { return plan::decide(manifest.model, env); });
  phases.add("index", env.index_seconds());
  phases.add("plan", -env.index_seconds());
  if (!decision->ok()) return std::unexpected(plan::no_usable_source(*decision));
  const format::ModelIndex& index = *decision->index;
  log::info(fmt::format("source: {} {} ({}); {} tensors, {} in {} file(s)",
                        manifest::to_string(decision->chosen_source().type), decision->chosen_source().path,
                        decision->why, index.tensors.size(), format_bytes(index.tensor_bytes()), index.files.size()));
  return *decision;
}

Result<LoadedWeights> stage_weights(const manifest::Manifest& manifest, const plan::Decision& decision,
                                    std::stop_token stop, Phases& phases, stage::CudaStartup* cuda) {
  const format::ModelIndex& index = *decision.index;
  std::atomic<uint64_t> progress{0};
  auto staged = phases.time("stage", [&] {
    ProgressDisplay display(index.tensor_bytes(), progress);
    return stage::stage_model(manifest, index, stop, progress, "/dev/shm", cuda);
  });
  if (cuda && cuda->started()) phases.add("cuda_init", cuda->seconds());
  if (!staged) return std::unexpected(staged.error());
  LoadedWeights loaded{decision, std::move(*staged), table_path_for(manifest)};
  auto written = phases.time("table", [&] {
    const auto json = stage::tensor_table_json(manifest, decision.chosen_source(), index, loaded.staged);
    return write_file_atomically(loaded.table_path, json);
  });
  if (!written) return std::unexpected(written.error());
  return loaded;
}

Result<LoadedWeights> load_weights(const manifest::Manifest& manifest, std::stop_token stop, Phases& phases,
                                   std::optional<plan::Decision>& decision) {
  stage::CudaStartup cuda(manifest.stage);  // context creation overlaps the plan and index phases
  auto decided = decide_source(manifest, phases, decision);
  if (!decided) return std::unexpected(decided.error());
  return stage_weights(manifest, *decided, stop, phases, &cuda);
}

std::vector<std::pair<std::string, std::string>> handoff_env(const manifest::Manifest& manifest,
                                                             const plan::Decision& decision) {
  return {{"TENSORINIT_TABLE", table_path_for(manifest)},
          {"TENSORINIT_MODEL_DIR", decision.index->dir},
          {"TENSORINIT_SOURCE", manifest::to_string(decision.chosen_source().type)}};
}

std::string summary_line(const LoadedWeights& loaded, const Phases& phases) {
  const double stage_s = phases.seconds("stage");
  return fmt::format("staged {} to {} with {} readers ({}) at {:.2f} GB/s; {}", format_bytes(loaded.staged.bytes),
                     manifest::to_string(loaded.staged.target), loaded.staged.readers,
                     loaded.staged.direct_io ? "O_DIRECT" : "buffered",
                     stage_s > 0 ? static_cast<double>(loaded.staged.bytes) / stage_s / 1e9 : 0.0, phases.summary());
}

}  // namespace tensorinit::app
