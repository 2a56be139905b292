// Staging: read every tensor of the chosen source into its destination.
#pragma once

#include <atomic>
#include <cstdint>
#include <stop_token>
#include <string>
#include <vector>

#include "format/tensor_index.hpp"
#include "manifest/manifest.hpp"
#include "stage/layout.hpp"
#include "stage/shm_arena.hpp"

namespace tensorinit::stage {

struct StagedModel {
  manifest::Target target = manifest::Target::host;  // resolved: host or pagecache
  std::vector<ShmArena> arenas;                      // host: one, published
  ArenaLayout layout;
  unsigned readers = 0;
  uint64_t chunk_size = 0;
  bool direct_io = false;                            // O_DIRECT used for at least one file
  uint64_t bytes = 0;                                // tensor bytes staged
};

// Readers for `auto`: I/O-bound threads, so more than the cores (4 per usable core, at least 8),
// bounded by memory_limit / chunk_size staging buffers.
unsigned choose_readers(const manifest::Stage& stage, unsigned usable_cores);

// Stages `index` as `manifest.stage` says. On any failure (or stop) nothing is left in shm_dir.
// `progress` counts bytes read, for the progress display.
Result<StagedModel> stage_model(const manifest::Manifest& manifest, const format::ModelIndex& index,
                                std::stop_token stop, std::atomic<uint64_t>& progress,
                                const std::string& shm_dir = "/dev/shm");

// The tensor table (contract: version 1) for a staged model.
std::string tensor_table_json(const manifest::Manifest& manifest, const manifest::Source& source,
                              const format::ModelIndex& index, const StagedModel& staged);

}  // namespace tensorinit::stage
