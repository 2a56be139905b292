// safetensors: `u64 N | N bytes of JSON header | data`. Everything in formats.md is validated
// before anything large is allocated.
#pragma once

#include <cstdint>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "format/tensor_index.hpp"
#include "io/byte_source.hpp"
#include "util/error.hpp"

namespace tensorinit::format {

inline constexpr uint64_t kMaxSafetensorsHeader = 100'000'000;

struct SafetensorsLayout {
  uint64_t data_start = 0;          // 8 + N
  uint64_t data_size = 0;           // what the header's offsets cover
  std::vector<TensorEntry> tensors; // file offsets absolute, sorted by offset; `file` left 0
};

// Validates the JSON header alone (names, dtypes, shapes, offsets: no holes, no overlap, start 0).
// `file_name` is only for messages. Errors: Code::bad_data.
// With `stop` requested (checked every few thousand tensors), Code::stopped.
Result<SafetensorsLayout> parse_safetensors_header(std::string_view json, uint64_t data_start,
                                                   std::string_view file_name, std::stop_token stop = {});

// Reads the header of a file through `source` and checks it against the file's size.
// A file shorter than its header says is Code::no_source ("incomplete"); malformed is bad_data.
Result<SafetensorsLayout> read_safetensors(const io::ByteSource& source, std::stop_token stop = {});

}  // namespace tensorinit::format
