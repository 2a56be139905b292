#include "format/shard_index.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <set>

#include "format/text.hpp"

namespace tensorinit::format {
namespace {

using nlohmann::json;

// The last path segment of a file path or URL.
std::string file_name_of(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

bool is_plain_file_name(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos &&
         name.find('\0') == std::string::npos;
}

Result<ShardIndex> parse_shard_index(std::string_view text, const std::string& name) {
  json index;
  try {
    index = json::parse(text);
  } catch (const json::exception& e) {
    // nlohmann quotes the bytes it last read, which may be invalid UTF-8 (the report is JSON).
    return fail(Code::bad_data, fmt::format("{}: not valid JSON: {}", name, utf8_escaped(e.what())));
  }
  auto map = index.is_object() ? index.find("weight_map") : index.end();
  if (map == index.end() || !map->is_object())
    return fail(Code::bad_data, fmt::format("{}: no \"weight_map\" object", name));
  ShardIndex out;
  std::set<std::string> seen;
  for (const auto& [tensor, shard] : map->items()) {
    if (!shard.is_string() || !is_plain_file_name(shard.get<std::string>()))
      return fail(Code::bad_data, fmt::format("{}: weight_map[{}] is not a file name", name, printable(tensor)));
    out.weight_map[tensor] = shard.get<std::string>();
    if (seen.insert(shard.get<std::string>()).second) out.shards.push_back(shard.get<std::string>());
  }
  if (out.weight_map.empty()) return fail(Code::bad_data, fmt::format("{}: the weight_map is empty", name));
  auto meta = index.find("metadata");
  if (meta != index.end() && meta->is_object()) {
    auto total = meta->find("total_size");
    if (total != meta->end() && total->is_number_unsigned()) out.total_size = total->get<uint64_t>();
  }
  return out;
}

Status check_against_index(const ModelIndex& model, const ShardIndex& index, const std::string& index_path) {
  std::set<std::string> names;
  for (const auto& t : model.tensors) {
    if (!names.insert(t.name).second)
      return fail(Code::bad_data, fmt::format("{}: tensor {} appears in more than one shard", index_path, printable(t.name)));
    auto it = index.weight_map.find(t.name);
    const std::string shard = file_name_of(model.files[t.file].path);
    if (it == index.weight_map.end())
      return fail(Code::bad_data, fmt::format("{}: tensor {} in {} is not in the weight_map", index_path, printable(t.name), shard));
    // A packed shard (NAME.zst, see format/packed_model.hpp) stands for the NAME the index lists.
    if (it->second != shard && !(model.files[t.file].packed && it->second + ".zst" == shard))
      return fail(Code::bad_data, fmt::format("{}: tensor {} is in {} but the weight_map says {}", index_path,
                                              printable(t.name), shard, it->second));
  }
  for (const auto& [tensor, shard] : index.weight_map)
    if (!names.count(tensor))
      return fail(Code::bad_data, fmt::format("{}: tensor {} is listed but {} does not hold it", index_path, printable(tensor), shard));
  if (index.total_size && *index.total_size != model.tensor_bytes())
    return fail(Code::bad_data, fmt::format("{}: total_size is {} but the shards hold {} tensor bytes", index_path,
                                            *index.total_size, model.tensor_bytes()));
  return {};
}

}  // namespace tensorinit::format
