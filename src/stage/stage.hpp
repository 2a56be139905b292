// Staging: read every tensor of the chosen source into its destination.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <stop_token>
#include <string>
#include <vector>

#include "format/tensor_index.hpp"
#include "io/byte_source.hpp"
#include "manifest/manifest.hpp"
#include "stage/layout.hpp"
#include "stage/pipeline.hpp"
#include "stage/shm_arena.hpp"

namespace tensorinit::stage {

class CudaStartup;  // stage/cuda_startup.hpp

struct StagedModel {
  // One arena of device memory per `stage.devices` entry (in that order), each a full replica
  // with the same layout; exported for the table.
  struct DeviceArena {
    int device = 0;
    uint64_t bytes = 0;
    std::string ipc_handle;  // cudaIpcMemHandle_t as 128 hex digits
    std::string uuid;        // "GPU-..."
  };

  manifest::Target target = manifest::Target::host;  // resolved: host, pagecache or cuda
  std::vector<ShmArena> arenas;                      // host: one, published
  std::vector<DeviceArena> device_arenas;            // cuda: one per device, complete and exported
  std::shared_ptr<void> device_memory;               // cuda: owns the device memory (freed with the model)
  double cuda_startup_seconds = 0;                   // cuda/auto: CUDA start-up's own time (its phase)
  ArenaLayout layout;
  unsigned readers = 0;
  uint64_t chunk_size = 0;
  bool direct_io = false;                            // O_DIRECT carried the load (the controller's choice)
  ReadChoices reads;                                 // the read controller's candidates and phases
  uint64_t bytes = 0;                                // tensor bytes staged
  // Packed files (0 when none is packed): compressed bytes read, and what their frames decoded
  // to (whole frames: a little over their share of `bytes` when reads cut frames).
  uint64_t compressed_bytes = 0;
  uint64_t decoded_bytes = 0;
};

// Readers for `auto`: I/O-bound threads, so more than the cores (4 per usable core, at least 8),
// bounded by memory_limit / chunk_size staging buffers.
unsigned choose_readers(const manifest::Stage& stage, unsigned usable_cores);

// Stages `index` as `manifest.stage` says. For target cuda or auto, `cuda_startup` (begun by the
// caller right after the manifest was read) is waited for; without one, CUDA starts here.
// On any failure (or stop) nothing is left in shm_dir. Local files are read through the
// descriptors the index opened (format::WeightFile::source), and each is checked unchanged before
// anything is published (stage/local_files.hpp): a file that changed is Code::bad_data. The target
// is claimed (host arena, device memory, the page cache's room) before anything sized by the
// index is allocated. `opened`: the files of a remote model, one
// per index.files entry (opened by the plan, maybe writing through to the cache); with target
// pagecache they must all be writing through (the caller checks), and are read, not kept.
// `progress` counts bytes read, for the progress display.
Result<StagedModel> stage_model(const manifest::Manifest& manifest, const format::ModelIndex& index,
                                std::stop_token stop, std::atomic<uint64_t>& progress,
                                const std::string& shm_dir = "/dev/shm", CudaStartup* cuda_startup = nullptr,
                                std::span<const std::shared_ptr<const io::ByteSource>> opened = {});

// The tensor table (contract: version 1) for a staged model.
std::string tensor_table_json(const manifest::Manifest& manifest, const manifest::Source& source,
                              const format::ModelIndex& index, const StagedModel& staged);

}  // namespace tensorinit::stage
