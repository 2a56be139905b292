#include "app/load_weights.hpp"

#include <cstdlib>
#include <fmt/format.h>

#include "app/progress.hpp"
#include "app/remote_cache.hpp"
#include "plan/system_environment.hpp"
#include "stage/stage.hpp"
#include "stage/table.hpp"
#include "util/atomic_file.hpp"
#include "util/cpu.hpp"
#include "util/redact.hpp"
#include "util/log.hpp"
#include "util/units.hpp"

namespace tensorinit::app {

std::string shm_dir_from_env() {
  const char* dir = std::getenv("TENSORINIT_SHM_DIR");
  return dir && *dir ? std::string(dir) : std::string("/dev/shm");
}

std::string table_path_for(const manifest::Manifest& manifest, const std::string& shm_dir) {
  return fmt::format("{}/tensorinit-{}.json", shm_dir, manifest.model.name);
}

std::string socket_path_for(const manifest::Manifest& manifest, const std::string& shm_dir) {
  return fmt::format("{}/tensorinit-{}.sock", shm_dir, manifest.model.name);
}

namespace {

std::string cache_dir_for(const manifest::Model& model) {
  return model.cache.empty() ? "" : fmt::format("{}/{}", model.cache, model.name);
}


// A remote model staged through the write-through cache. Its files land there as they are read;
// once the cache holds them all, the decision names the cached paths (where a server reading files
// finds them).
Result<stage::StagedModel> stage_remote(stage::StageRequest request, const manifest::Manifest& manifest,
                                        const plan::Decision& decision, std::stop_token stop,
                                        std::atomic<uint64_t>& progress, std::optional<format::ModelIndex>& cached_index,
                                        bool& cache_failed,
                                        std::vector<std::shared_ptr<const io::FileSource>>& copies) {
  RemoteCache cache(decision.remote, cache_dir_for(manifest.model));
  request.remote = stage::RemoteFiles{.sources = cache.sources(), .cache_dir = cache.dir(),
                                      .written_through = cache.filling_all()};
  if (!request.read.readers) request.read.readers = plan::remote_readers(decision.chosen_source(), usable_cores());
  auto staged = stage::stage_model(request, *decision.index, stop, progress);
  if (!staged) return staged;
  if (cache.commit()) {
    cached_index = *decision.index;  // a copy, of remote models alone
    for (size_t i = 0; i < decision.remote->files.size(); ++i)
      cached_index->files[i].path = fmt::format("{}/{}", cache.dir(), decision.remote->files[i].name);
    log::info(fmt::format("model.cache: {} holds the model now; the next start reads it from there", cache.dir()));
  }
  cache_failed = cache.failed();
  if (staged->target != Target::pagecache) return staged;
  if (!cached_index) {
    // The server reads the files from the cache: without them its table would name the remote
    // URLs, and the directory an incomplete (or older) copy.
    return fail(Code::io, fmt::format("model.cache: {} does not hold the whole model (see the warning above); "
                                      "stage.target pagecache serves the files from there: nothing was handed off",
                                      cache.dir()));
  }
  // The copies the table names, held open: a restart checks them as it checks local files.
  auto opened = cache.open_copies();
  if (!opened) return std::unexpected(opened.error());
  copies = std::move(*opened);
  return staged;
}

}  // namespace

stage::StageRequest stage_request(const manifest::Manifest& manifest, const std::string& shm_dir,
                                  stage::CudaStartup* cuda) {
  const manifest::Stage& s = manifest.stage;
  std::optional<bool> direct_io;
  if (s.direct_io != manifest::DirectIo::automatic) direct_io = s.direct_io == manifest::DirectIo::on;
  std::optional<bool> shared_cursor;
  if (s.shared_cursor != manifest::DirectIo::automatic) shared_cursor = s.shared_cursor == manifest::DirectIo::on;
  return {.model_name = manifest.model.name,
          .target = s.target,
          .devices = s.devices,
          .read = {.readers = s.readers ? std::optional<unsigned>(s.readers) : std::nullopt,
                   .chunk_size = s.chunk_size_set ? std::optional<uint64_t>(s.chunk_size) : std::nullopt,
                   .direct_io = direct_io,
                   .shared_cursor = shared_cursor,
                   .memory_limit = s.memory_limit},
          .checks = {.checksums = manifest.model.verify == manifest::Verify::checksums,
                     .key = manifest.model.key,
                     .passphrase = manifest.model.passphrase},
          .shm_dir = shm_dir,
          .remote = std::nullopt,
          .cuda_startup = cuda};
}

Result<const plan::Decision*> decide_source(const manifest::Manifest& manifest, Phases& phases,
                                            std::optional<plan::Decision>& decision, std::stop_token stop) {
  plan::SystemEnvironment env(stop);
  decision = phases.time("plan", [&] { return plan::decide(manifest.model, env); });
  phases.add("index", env.index_seconds());
  phases.add("plan", -env.index_seconds());
  if (!decision->ok()) return std::unexpected(plan::no_usable_source(*decision));
  // A remote model written through lands in the cache: where a server reading files finds it.
  if (decision->remote && !manifest.model.cache.empty()) decision->index->dir = cache_dir_for(manifest.model);
  const format::ModelIndex& index = *decision->index;
  const manifest::Source& chosen = decision->chosen_source();
  log::info(fmt::format("source: {} {} ({}); {} tensors, {} in {} file(s)", manifest::to_string(chosen.type),
                        decision->remote ? chosen.url.redacted() : chosen.path,
                        decision->why, index.tensors.size(), format_bytes(index.tensor_bytes()), index.files.size()));
  return &*decision;
}

Result<LoadedWeights> stage_weights(const manifest::Manifest& manifest, const plan::Decision& decision,
                                    std::stop_token stop, Phases& phases, stage::CudaStartup* cuda,
                                    const std::string& shm_dir,
                                    std::function<Status(const stage::ShmArena&)> before_publish) {
  const format::ModelIndex& index = *decision.index;
  std::atomic<uint64_t> progress{0};
  std::optional<format::ModelIndex> cached_index;  // the index with the cache's paths (remote, written through)
  bool loaded_cache_failed = false;
  std::vector<std::shared_ptr<const io::FileSource>> copies;  // a remote pagecache load's, in the cache
  // An arena table's tensors are written while the readers stage (stage/table.hpp); a pagecache
  // table names the files, which a remote model's cache renames: written after.
  std::optional<stage::TableTensorsAhead> ahead;
  if (manifest.stage.target != Target::pagecache) ahead.emplace(index, stop);
  auto staged = phases.time("stage", [&]() -> Result<stage::StagedModel> {
    ProgressDisplay display(index.tensor_bytes(), progress);
    stage::StageRequest request = stage_request(manifest, shm_dir, cuda);
    request.before_publish = std::move(before_publish);
    if (decision.remote)
      return stage_remote(std::move(request), manifest, decision, stop, progress, cached_index, loaded_cache_failed,
                          copies);
    return stage::stage_model(request, index, stop, progress);
  });
  if (cuda && cuda->started()) phases.add_beside("cuda_init", cuda->seconds());
  if (!staged) return std::unexpected(staged.error());
  LoadedWeights loaded{&decision, std::move(*staged), table_path_for(manifest, shm_dir)};
  // A remote model's directory is the cache only once the cache holds it (a server reading files
  // from there would find none of it, or an older unrecorded copy).
  loaded.model_dir = decision.remote && !cached_index ? decision.remote->index.dir : decision.index->dir;
  loaded.cache_failed = loaded_cache_failed;
  if (loaded.staged.target == Target::pagecache) {
    if (decision.remote) loaded.served_files = std::move(copies);
    else
      for (const auto& f : index.files) loaded.served_files.push_back(f.source);
  }
  auto written = phases.time("table", [&] {
    const manifest::Source& source = decision.chosen_source();
    const stage::TableSource origin{.model = manifest.model.name, .type = manifest::to_string(source.type),
                                    .path = source.path, .url = source.url};
    if (ahead && loaded.staged.target != Target::pagecache)
      loaded.table = stage::tensor_table_json(origin, loaded.staged, ahead->take(loaded.staged.layout));
    else
      loaded.table = stage::tensor_table_json(origin, cached_index ? *cached_index : *decision.index, loaded.staged);
    return write_file_atomically(loaded.table_path, loaded.table);
  });
  if (!written) return std::unexpected(written.error());
  return loaded;
}

std::vector<std::pair<std::string, std::string>> handoff_env(const manifest::Manifest& manifest,
                                                             const plan::Decision& decision,
                                                             const std::string& shm_dir,
                                                             const std::string& model_dir) {
  return {{"TENSORINIT_TABLE", table_path_for(manifest, shm_dir)},
          {"TENSORINIT_MODEL_DIR", model_dir.empty() ? decision.index->dir : model_dir},
          {"TENSORINIT_SOURCE", manifest::to_string(decision.chosen_source().type)}};
}

std::string summary_line(const LoadedWeights& loaded, const Phases& phases) {
  const double stage_s = phases.seconds("stage");
  return fmt::format("staged {} to {} with {} readers ({}) at {:.2f} GB/s; {}", format_bytes(loaded.staged.bytes),
                     stage::to_string(loaded.staged.target), loaded.staged.readers,
                     loaded.staged.direct_io ? "O_DIRECT" : "buffered",
                     stage_s > 0 ? static_cast<double>(loaded.staged.bytes) / stage_s / 1e9 : 0.0, phases.summary());
}

}  // namespace tensorinit::app
