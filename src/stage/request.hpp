// What the app asks of stage, as plain values: nothing of the manifest reaches stage/. The app
// (app/load_weights.cpp stage_request) builds a StageRequest from the manifest and the plan's
// decision; stage_model (stage/stage.hpp) executes it. A new manifest key that changes staging
// becomes a field here, read by the one place in stage/ it concerns.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "io/byte_source.hpp"
#include "util/error.hpp"
#include "util/redact.hpp"
#include "util/target.hpp"

namespace tensorinit::stage {

class CudaStartup;  // stage/cuda_startup.hpp
class ShmArena;     // stage/shm_arena.hpp

// Where the tensors go (util/target.hpp, the manifest's type too). `automatic` resolves to cuda when
// CUDA is usable, else host. discard: read, verify, keep nothing.
using Target = tensorinit::Target;
using tensorinit::to_string;  // the manifest's words: host, pagecache, cuda, auto, discard

inline constexpr uint64_t kDefaultChunkSize = 16ull << 20;  // the contract's stage.chunk_size default

// How to read: the user's explicit choices, nullopt where they left `auto` (the read controller
// decides those; stage/read_settings.hpp), plus the staging memory every choice must fit in.
struct ReadSettings {
  std::optional<unsigned> readers;      // reader threads
  std::optional<uint64_t> chunk_size;   // bytes per read (a multiple of 4096)
  std::optional<bool> direct_io;        // O_DIRECT; auto: per file, when under half of it is cached
  std::optional<bool> shared_cursor;    // readers share one cursor (on), never (off); auto: measured
  uint64_t memory_limit = 1ull << 30;   // all staging buffers together
};

// Work on the bytes between read and destination (tensorizer files only; stage/tensorizer_reads.hpp).
struct TensorChecks {
  bool checksums = false;  // tensorizer's CRC-32 and SHA-256 per tensor (model.verify: checksums)
  Secret key;              // decrypts encrypted tensors (hex or base64 as written)
  Secret passphrase;       // or derives the key (Argon2id parameters from the file)
};

// A remote model's files, opened by the plan (versions pinned), one per index.files entry.
struct RemoteFiles {
  std::vector<std::shared_ptr<const io::ByteSource>> sources;
  std::string cache_dir;         // model.cache's directory for this model; empty: none
  bool written_through = false;  // every file lands in cache_dir as it is read (none racing us)
};

struct StageRequest {
  std::string model_name;  // names the host arena in shm_dir
  Target target = Target::host;
  std::vector<int> devices{0};  // cuda: one full replica per device, in this order
  ReadSettings read;
  TensorChecks checks;
  std::string shm_dir = "/dev/shm";
  std::optional<RemoteFiles> remote;  // nullopt: local files, read through index.files[i].source
  // cuda and auto: CUDA start-up begun by the caller (it overlaps the plan); null: started here.
  CudaStartup* cuda_startup = nullptr;
  // Host target: called with each arena once every byte is in and the files were checked, before
  // the arena has a name in shm_dir (a server started early cannot open it yet). What must be taken
  // of the bytes as staged is taken here (the restart digest, app/arena_guard.hpp); after publish
  // a server could write them first. An error fails the load (nothing published). Empty: none.
  std::function<Status(const ShmArena&)> before_publish;
};

}  // namespace tensorinit::stage
