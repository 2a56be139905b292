// What staging produced: the arenas the server maps (or, for pagecache, nothing but warm files),
// and how it was read (for the report).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "stage/layout.hpp"
#include "stage/pipeline.hpp"
#include "stage/request.hpp"
#include "stage/shm_arena.hpp"

namespace tensorinit::stage {

struct StagedModel {
  // One arena of device memory per request.devices entry (in that order), each a full replica
  // with the same layout; exported for the table.
  struct DeviceArena {
    int device = 0;
    uint64_t bytes = 0;
    std::string ipc_handle;  // cudaIpcMemHandle_t as 128 hex digits
    std::string uuid;        // "GPU-..."
  };

  Target target = Target::host;             // resolved: host, pagecache, cuda or discard
  std::vector<ShmArena> arenas;             // host: one, published
  std::vector<DeviceArena> device_arenas;   // cuda: one per device, complete and exported
  std::shared_ptr<void> device_memory;      // cuda: owns the device memory (freed with the model)
  ArenaLayout layout;
  unsigned readers = 0;
  uint64_t chunk_size = 0;
  bool direct_io = false;                   // O_DIRECT carried the load (the controller's choice)
  ReadChoices reads;                        // the read controller's candidates and phases
  uint64_t bytes = 0;                       // tensor bytes staged
  // Packed files (0 when none is packed): compressed bytes read, and what their frames decoded
  // to (whole frames: a little over their share of `bytes` when reads cut frames).
  uint64_t compressed_bytes = 0;
  uint64_t decoded_bytes = 0;
};

}  // namespace tensorinit::stage
