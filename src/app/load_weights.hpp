// The weights path shared by `load` and `run`: plan, index, stage, tensor table, report.
#pragma once

#include <functional>
#include <optional>
#include <stop_token>
#include <string>

#include "app/phases.hpp"
#include "manifest/manifest.hpp"
#include "plan/decision.hpp"
#include "stage/cuda_startup.hpp"
#include "stage/request.hpp"
#include "stage/staged_model.hpp"

namespace tensorinit::app {

struct LoadedWeights {
  // The decision staged: the session's own (LoadSession::decision_), which outlives this; not a
  // copy (a copy of every tensor entry cost 11% of a 100,000-tensor load, measured here).
  const plan::Decision* decision = nullptr;
  stage::StagedModel staged;
  std::string table_path;  // written atomically
  // The table's text as written: what the ready socket serves and a restart writes back. Never
  // read back from table_path, which a server started early may have replaced.
  std::string table;
  // TENSORINIT_MODEL_DIR as it is now: the decision's directory; for a remote model written
  // through model.cache, the cache directory only once it holds the whole model, else the remote's
  // URL prefix (as without a cache). cache_failed: a file of this load's could not be cached there.
  std::string model_dir;
  bool cache_failed = false;
  // target pagecache: the files the table names, open (the local sources, or a remote model's
  // copies in model.cache), each as it was when staged; a restart checks them (ArenaGuard::check).
  std::vector<std::shared_ptr<const io::FileSource>> served_files;
};

// Where arenas, tables, sockets and name locks go: $TENSORINIT_SHM_DIR when set and not empty
// (tests, several instances on one host that must not meet), else /dev/shm.
std::string shm_dir_from_env();

// Where the tensor table goes: beside the arenas, `<shm_dir>/tensorinit-<model>.json`.
std::string table_path_for(const manifest::Manifest& manifest, const std::string& shm_dir = shm_dir_from_env());

// Where the readiness socket of signal mode goes: `<shm_dir>/tensorinit-<model>.sock`.
std::string socket_path_for(const manifest::Manifest& manifest, const std::string& shm_dir = shm_dir_from_env());

// What stage_model is asked to do for `manifest`: target, devices, read settings (0 readers and
// direct_io auto become nullopt), tensorizer checks, shm_dir. Local files; the caller adds
// `remote` for a remote model.
stage::StageRequest stage_request(const manifest::Manifest& manifest, const std::string& shm_dir,
                                  stage::CudaStartup* cuda = nullptr);

// The plan and index phases: which source, and its tensors. Fast (headers only), so signal mode
// runs it before spawning the server, which then knows TENSORINIT_MODEL_DIR.
// Remote candidates are opened here (`stop` ends their retries). The result points into `decision`.
Result<const plan::Decision*> decide_source(const manifest::Manifest& manifest, Phases& phases,
                                            std::optional<plan::Decision>& decision, std::stop_token stop = {});

// The stage and table phases for a decided source. On failure nothing is left in shm_dir.
// `cuda`, started before the plan so that context creation overlaps it, is waited for here.
// The caller owns the model name in shm_dir (stage::NameLock; app/load_session.hpp does both).
// `before_publish`: stage::StageRequest's (the restart digest).
Result<LoadedWeights> stage_weights(const manifest::Manifest& manifest, const plan::Decision& decision,
                                    std::stop_token stop, Phases& phases, stage::CudaStartup* cuda,
                                    const std::string& shm_dir,
                                    std::function<Status(const stage::ShmArena&)> before_publish = {});

// The environment the server gets: TENSORINIT_TABLE, TENSORINIT_MODEL_DIR, TENSORINIT_SOURCE.
// `model_dir`, when not empty, is TENSORINIT_MODEL_DIR (LoadedWeights::model_dir once staged);
// else the decision's directory (signal mode, before staging).
std::vector<std::pair<std::string, std::string>> handoff_env(const manifest::Manifest& manifest,
                                                             const plan::Decision& decision,
                                                             const std::string& shm_dir,
                                                             const std::string& model_dir = "");

// One line for stderr: what was staged, how fast, and the phase timings.
std::string summary_line(const LoadedWeights& loaded, const Phases& phases);

}  // namespace tensorinit::app
