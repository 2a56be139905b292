#include "stage/read_settings.hpp"

#include <algorithm>
#include <numeric>

#include "stage/pipeline.hpp"

namespace tensorinit::stage {

uint64_t chunk_size_for(const ReadSettings& read, const format::ModelIndex& index) {
  const uint64_t chunk_size = read.chunk_size.value_or(kDefaultChunkSize);
  uint64_t multiple = kStagingAlign;
  for (const auto& f : index.files)
    if (f.packed && f.frame_bytes) multiple = std::lcm(multiple, f.frame_bytes);
  if (multiple == kStagingAlign || multiple > (1ull << 30)) return chunk_size;
  return std::max<uint64_t>(1, (chunk_size + multiple - 1) / multiple) * multiple;
}

uint64_t reader_bytes(const format::ModelIndex& index, uint64_t chunk_size) {
  uint64_t bytes = chunk_size;
  for (const auto& f : index.files)
    if (f.packed) bytes = std::max(bytes, 2 * chunk_size + (f.frame_bytes ? f.frame_bytes : chunk_size));
  return staging_buffer_bytes(bytes);
}

unsigned choose_readers(const ReadSettings& read, uint64_t per_reader, unsigned usable_cores) {
  const unsigned readers = read.readers.value_or(std::max(8u, 4 * usable_cores));
  const auto affordable = static_cast<unsigned>(std::max<uint64_t>(1, read.memory_limit / std::max<uint64_t>(per_reader, 1)));
  return std::min(readers, affordable);
}

}  // namespace tensorinit::stage
