#include "format/safetensors_writer.hpp"

#include <cstring>
#include <nlohmann/json.hpp>

namespace tensorinit::format {

std::string safetensors_head(const std::vector<TensorSpec>& tensors,
                             const std::map<std::string, std::string>& metadata) {
  // Tensors in data order, which is what readers expect to see. Written entry by entry:
  // ordered_json's operator[] finds each key by a linear scan (quadratic in the tensor count).
  std::string json = "{";
  if (!metadata.empty()) json += "\"__metadata__\":" + nlohmann::json(metadata).dump();
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    if (json.size() > 1) json += ',';
    json += nlohmann::json(t.name).dump() + ':';
    json += nlohmann::ordered_json{{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {offset, offset + t.bytes}}}.dump();
    offset += t.bytes;
  }
  json += '}';
  json.append((8 - json.size() % 8) % 8, ' ');
  const uint64_t n = json.size();
  std::string head(8, '\0');
  std::memcpy(head.data(), &n, 8);
  return head + json;
}

}  // namespace tensorinit::format
