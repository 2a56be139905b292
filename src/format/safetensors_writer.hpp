// Writes the head of a safetensors file: `u64 N | JSON header padded with spaces to 8`.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace tensorinit::format {

struct TensorSpec {
  std::string name;
  std::string dtype;
  std::vector<uint64_t> shape;
  uint64_t bytes = 0;
};

// Tensors are laid out back to back in the given order, as the reference writer does.
// Returns the bytes to put at offset 0; the data section starts right after them.
std::string safetensors_head(const std::vector<TensorSpec>& tensors,
                             const std::map<std::string, std::string>& metadata);

}  // namespace tensorinit::format
