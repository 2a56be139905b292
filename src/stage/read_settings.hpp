// How stage_model reads where the request leaves it open: the chunk size (packed files' frames),
// the reader count for `auto`, and what each reader's staging costs. Pure functions of the request
// and the index, apart from the caller's core count. They set bounds only: the chunk is the unit
// of work and the largest read, the readers are the most reads in flight; within them the read
// controller (stage/read_controller.hpp, run by stage/pipeline.cpp) picks the mode, the bytes per
// read and the reads in flight during the load, where the request leaves those `auto`.
#pragma once

#include <cstdint>

#include "format/tensor_index.hpp"
#include "stage/request.hpp"

namespace tensorinit::stage {

// The chunk size to read with: the request's (kDefaultChunkSize when unset), rounded up to whole
// frames of packed files, so that no frame is decoded twice. Frames of F decoded bytes start at
// multiples of F, and so do chunks when the chunk size is a multiple of F (and of 4 KiB, for the
// other files' O_DIRECT reads). Frames of varying size: the chunk size as given.
uint64_t chunk_size_for(const ReadSettings& read, const format::ModelIndex& index);

// The staging memory one reader holds for reads of `chunk_size`: its buffer and, with packed files,
// the compressed bytes of a chunk (no more than the chunk) and one decoded frame.
uint64_t reader_bytes(const format::ModelIndex& index, uint64_t chunk_size);

// Readers: the request's count, or for `auto` 4 per usable core, at least 8 (I/O-bound threads);
// either way no more than memory_limit / `per_reader` (at least one).
unsigned choose_readers(const ReadSettings& read, uint64_t per_reader, unsigned usable_cores);

}  // namespace tensorinit::stage
