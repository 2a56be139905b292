// Staging: read every tensor of an indexed model into the destination a StageRequest names.
#pragma once

#include <atomic>
#include <cstdint>
#include <stop_token>

#include "format/tensor_index.hpp"
#include "stage/request.hpp"
#include "stage/staged_model.hpp"
#include "util/error.hpp"

namespace tensorinit::stage {

// Stages `index` as `request` says, in the same steps for every target (stage/destination.hpp):
// resolve the target (cuda and auto wait for request.cuda_startup, or start CUDA here), admit
// (the target's refusals), claim the target's room before anything sized by the index is
// allocated, read, check the files, publish. On any failure (or stop) nothing is left in shm_dir
// and device memory is freed.
// Local files are read through the descriptors the index opened (format::WeightFile::source), and
// each is checked unchanged before anything is published (stage/local_files.hpp): a file that
// changed is Code::bad_data. A remote model is read through request.remote's sources (opened by
// the plan, maybe writing through to the cache). `progress` counts bytes read, for the display.
// Thread-safety: concurrent calls need distinct model names (the caller holds the NameLock).
Result<StagedModel> stage_model(const StageRequest& request, const format::ModelIndex& index, std::stop_token stop,
                                std::atomic<uint64_t>& progress);

}  // namespace tensorinit::stage
