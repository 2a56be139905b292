// The read pipeline: `readers` threads pull chunks off one shared cursor.
#pragma once

#include <atomic>
#include <cstdint>
#include <span>
#include <stop_token>

#include "io/byte_source.hpp"
#include "io/file_source.hpp"
#include "stage/layout.hpp"
#include "stage/sink.hpp"

namespace tensorinit::stage {

struct PipelineOptions {
  unsigned readers = 4;
  uint64_t chunk_size = 16ull << 20;
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
