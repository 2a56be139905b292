// The read pipeline: `readers` threads pull chunks off one shared cursor.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <stop_token>
#include <vector>

#include "io/byte_source.hpp"
#include "io/file_source.hpp"
#include "stage/layout.hpp"
#include "stage/read_controller.hpp"
#include "stage/sink.hpp"

namespace tensorinit::stage {

// Work on a chunk between its read and the sink, on the reader's thread (tensorizer decryption
// and checksums, stage/tensorizer_reads.hpp). The filter groups the plan's chunks into items: one
// reader runs an item's chunks in order, so a filter may carry state from chunk to chunk of an
// item (a running hash); items run concurrently. Thread-safe for distinct items.
class ChunkFilter {
 public:
  virtual ~ChunkFilter() = default;
  // Item k is chunks [item_starts()[k], item_starts()[k + 1]); the last entry is the chunk count.
  virtual std::span<const uint32_t> item_starts() const = 0;
  // `bytes` holds file bytes [chunk.offset, + chunk.len) of chunk `chunk`; the filter may rewrite
  // them in place (decrypt) before the sink takes them. An error stops the pipeline.
  virtual Status filter(size_t chunk, std::span<std::byte> bytes) = 0;
};

// What the user fixed; nullopt where they left `auto` to the read controller.
struct ReadTuning {
  std::optional<bool> direct;         // stage.direct_io on/off
  std::optional<uint64_t> request;    // stage.chunk_size: whole chunks per read
  std::optional<unsigned> readers;    // stage.readers: reads in flight
  std::optional<bool> shared;         // stage.shared_cursor on/off (ReadFacts::shared)
  uint64_t probe_bytes = 0;           // 0: controller_options' budgets (tests set small ones)
};

// What the read controller did, for the report.
struct ReadChoices {
  std::vector<ReadSetting> candidates;
  std::vector<ReadPhase> phases;
  ReadSetting best;  // the setting that carried the load (read the most bytes)
  std::string unmapped;  // why chunks of small tensors were read, not mapped (the first refusal); "" when none
};

// The staging buffer a reader needs for reads of up to `chunk_size`: the pipeline reads from the
// chunk start aligned down to 4 KiB to the end aligned up (O_DIRECT), so two blocks more. The one
// place this size is written: the readers' buffers, the cuda sink's ring and the readers' budget.
constexpr uint64_t kStagingAlign = 4096;
constexpr uint64_t staging_buffer_bytes(uint64_t chunk_size) { return chunk_size + 2 * kStagingAlign; }

struct PipelineOptions {
  unsigned readers = 4;  // reader threads; when tuned, the most reads in flight
  uint64_t chunk_size = 16ull << 20;
  ChunkFilter* filter = nullptr;  // none: every chunk is an item of its own, passed through as read
  // Set: the read controller (stage/read_controller.hpp) picks mode, request size and reads in
  // flight within what it leaves open. Unset: `readers` threads read whole chunks, each file with
  // its own mode (O_DIRECT where enabled).
  std::optional<ReadTuning> tune;
  ReadChoices* choices = nullptr;  // filled when set
};

// Reads every chunk of `plan` into a staging buffer per reader (aligned, so sources with an
// alignment, O_DIRECT files, read from the aligned-down chunk start) and hands it to `sink`.
// Stops early on the first error (returned) or when `stop` is requested (Code::stopped).
// `done` counts bytes.
Status run_pipeline(const ReadPlan& plan, std::span<const io::ByteSource* const> files, Sink& sink,
                    const PipelineOptions& options, std::stop_token stop, std::atomic<uint64_t>& done);

// The pagecache target: makes every chunk resident, copying nothing. Same stopping rules.
Status warm_page_cache(const ReadPlan& plan, std::span<const io::FileSource* const> files,
                       const PipelineOptions& options, std::stop_token stop, std::atomic<uint64_t>& done);

}  // namespace tensorinit::stage
