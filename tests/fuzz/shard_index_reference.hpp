// The shard index reader as it was before the flat one (format/shard_index.cpp): an nlohmann DOM
// and std::map/std::set. The flat reader must agree with it on every input: the same shards in
// the same order, the same weight_map and total, or the same error. Used by the unit test and the
// fuzz target fuzz_shard_index.
#pragma once

#include <fmt/format.h>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "format/shard_index.hpp"
#include "format/text.hpp"

namespace tensorinit::format::reference {

struct ShardIndex {
  std::vector<std::string> shards;
  std::map<std::string, std::string> weight_map;
  std::optional<uint64_t> total_size;
};

inline Result<ShardIndex> parse_shard_index(std::string_view text, const std::string& name) {
  nlohmann::json index;
  try {
    index = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    return fail(Code::bad_data, fmt::format("{}: not valid JSON: {}", name, utf8_escaped(e.what())));
  }
  auto map = index.is_object() ? index.find("weight_map") : index.end();
  if (map == index.end() || !map->is_object()) return fail(Code::bad_data, fmt::format("{}: no \"weight_map\" object", name));
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

// Where the flat reader's answer differs from the reference's: a description, or empty.
inline std::string difference(std::string_view text) {
  const auto flat = format::parse_shard_index(text, "i.json");
  const auto ref = parse_shard_index(text, "i.json");
  if (flat.has_value() != ref.has_value()) return "one accepts, the other refuses";
  if (!ref) return flat.error().message == ref.error().message ? "" : "messages: " + flat.error().message + " | " + ref.error().message;
  if (flat->shards != ref->shards) return "shards";
  if (flat->total_size != ref->total_size) return "total_size";
  if (flat->weight_map.size() != ref->weight_map.size()) return "weight_map size";
  for (const auto& [tensor, shard] : ref->weight_map) {
    const auto at = flat->find(tensor);
    if (!at || flat->shards[flat->weight_map[*at].shard] != shard) return "weight_map[" + tensor + "]";
  }
  return "";
}

}  // namespace tensorinit::format::reference
