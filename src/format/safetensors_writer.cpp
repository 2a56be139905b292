#include "format/safetensors_writer.hpp"

#include <cstring>
#include <nlohmann/json.hpp>

namespace tensorinit::format {

std::string safetensors_head(const std::vector<TensorSpec>& tensors,
                             const std::map<std::string, std::string>& metadata) {
  // ordered_json keeps tensors in data order, which is what readers expect to see.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    header[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {offset, offset + t.bytes}}};
    offset += t.bytes;
  }
  std::string json = header.dump();
  json.append((8 - json.size() % 8) % 8, ' ');
  const uint64_t n = json.size();
  std::string head(8, '\0');
  std::memcpy(head.data(), &n, 8);
  return head + json;
}

}  // namespace tensorinit::format
