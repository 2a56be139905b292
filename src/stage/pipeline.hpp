// The read pipeline: `readers` threads pull chunks off one shared cursor and hand them to a sink.
#pragma once

#include <atomic>
#include <cstdint>
#include <span>
#include <stop_token>

#include "io/file_source.hpp"
#include "stage/layout.hpp"
#include "stage/sink.hpp"

namespace tensorinit::stage {

struct PipelineOptions {
  unsigned readers = 4;
  uint64_t chunk_size = 16ull << 20;
};

// Reads every chunk of `plan` into `sink`. Files opened with direct I/O are read with O_DIRECT
// into aligned staging buffers; others are read in place where the sink allows. Stops early on
// the first error (returned) or when `stop` is requested (Code::stopped). `done` counts bytes.
Status run_pipeline(const ReadPlan& plan, std::span<const io::FileSource* const> files, Sink& sink,
                    const PipelineOptions& options, std::stop_token stop, std::atomic<uint64_t>& done);

}  // namespace tensorinit::stage
