// Where staged bytes end up: one object per target (the host arena, the page cache, CUDA device
// memory, or discard for benchmarks) behind one interface. stage_model (stage/stage.cpp) runs the same steps for every
// target, in this order, and knows nothing else about them:
//   admit    refusals that depend on the target, before anything is claimed or read;
//   claim    the room for the model (so that nothing sized by an index's claim is allocated
//            before the target has agreed to hold it);
//   receive  the readers' bytes, through the read plan;
//   publish  after the files were checked unchanged: make the model visible to the server.
// Whatever was claimed and not published is released when the destination is destroyed (the
// arena unlinked, device memory freed), so a failure at any step leaves nothing behind.
// Adding a target: its class and its case in make_destination (destination.cpp), and its value and
// word in util/target.hpp (the one Target enum, which the manifest parses too).
// Thread-safety: none; one caller (stage_model) drives each step.
#pragma once

#include <atomic>
#include <memory>
#include <span>
#include <stop_token>

#include "format/tensor_index.hpp"
#include "io/byte_source.hpp"
#include "io/file_source.hpp"
#include "stage/layout.hpp"
#include "stage/pipeline.hpp"
#include "stage/request.hpp"
#include "stage/staged_model.hpp"

namespace tensorinit::stage {

// What the readers read, as receive() gets it.
struct Reads {
  const ReadPlan& plan;
  std::span<const io::ByteSource* const> sources;  // per index.files entry; packed ones decoded
  std::span<io::FileSource* const> local;          // the local files (empty for a remote model)
  PipelineOptions options;
  // Arena ranges that must read as zeros and that no read fills: tensorizer meta tensors (no
  // bytes in the file, loaded as zeros). file_offset unused.
  std::span<const Piece> zeros;
};

class Destination {
 public:
  virtual ~Destination() = default;

  // False where the server reads the model's files itself (pagecache): reads then go through the
  // page cache (no O_DIRECT), packed files are not decoded, and the paths must still name the
  // files that were read when the load ends.
  virtual bool holds_bytes() const { return true; }

  // Code::no_source (or the config's code) naming the file and the fix; nothing touched.
  virtual Status admit(const format::ModelIndex& index) const = 0;
  // Room for `bytes` of tensors laid out as `layout` says.
  virtual Status claim(const ArenaLayout& layout) = 0;
  virtual Status receive(const Reads& reads, std::stop_token stop, std::atomic<uint64_t>& progress) = 0;
  // Moves what the server needs into `staged` (arenas, exported device memory).
  virtual Status publish(StagedModel& staged) = 0;
};

// Target pagecache hands the server `file` and `file_offset` to read itself: every tensor's bytes
// must lie in its file as they are. Not so for a packed file (compressed), a tensorizer meta tensor
// (no bytes in the file: loaded as zeros) or an encrypted tensor (ciphertext). Code::no_source
// naming the file, the tensor and the fix. Part of the page cache's admit (local, cache, remote
// written through alike), before anything is read or written. Thread-safe.
Status check_pagecache_can_serve(const format::ModelIndex& index);

// The destination for a resolved target (host, pagecache, cuda or discard; not automatic).
std::unique_ptr<Destination> make_destination(Target target, const StageRequest& request);

}  // namespace tensorinit::stage
