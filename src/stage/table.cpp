#include <nlohmann/json.hpp>

#include "stage/stage.hpp"

namespace tensorinit::stage {

std::string tensor_table_json(const manifest::Manifest& manifest, const manifest::Source& source,
                              const format::ModelIndex& index, const StagedModel& staged) {
  using nlohmann::json;
  json table = {{"version", 1}, {"model", manifest.model.name}};
  table["source"] = {{"type", manifest::to_string(source.type)}};
  if (source.path.empty()) table["source"]["url"] = source.url;
  else table["source"]["path"] = source.path;
  json arenas = json::array();
  for (size_t i = 0; i < staged.arenas.size(); ++i)
    arenas.push_back({{"index", i}, {"device", "host"}, {"bytes", staged.arenas[i].size()},
                      {"path", staged.arenas[i].path()}});
  for (const auto& device : staged.device_arenas)  // cuda: replicas with one layout; tensors name the first
    arenas.push_back({{"index", arenas.size()}, {"device", "cuda:" + std::to_string(device.device)}, {"bytes", device.bytes},
                      {"ipc", {{"kind", "cuda_ipc"}, {"handle", device.ipc_handle}, {"device", device.device},
                               {"uuid", device.uuid}}}});
  const bool pagecache = staged.target == manifest::Target::pagecache;
  if (!pagecache) table["arenas"] = std::move(arenas);
  json tensors = json::array();
  for (size_t i = 0; i < index.tensors.size(); ++i) {
    const auto& t = index.tensors[i];
    json entry = {{"name", t.name}, {"dtype", t.dtype}, {"shape", t.shape}};
    if (pagecache) {
      entry["file"] = index.files[t.file].path;
      entry["file_offset"] = t.file_offset;
    } else {
      entry["arena"] = 0;
      entry["offset"] = staged.layout.offsets[i];
    }
    entry["bytes"] = t.bytes;
    tensors.push_back(std::move(entry));
  }
  table["tensors"] = std::move(tensors);
  return table.dump(1) + "\n";
}

}  // namespace tensorinit::stage
