// model.safetensors.index.json: which shard holds each tensor. Read from a local directory or
// fetched from a remote prefix; either way checked against the shards' own headers.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "format/tensor_index.hpp"
#include "util/error.hpp"

namespace tensorinit::format {

inline constexpr const char* kShardIndexName = "model.safetensors.index.json";
// Real index files are a few hundred KiB; anything near this is not one (and is not read into memory).
inline constexpr uint64_t kMaxShardIndexBytes = 100'000'000;

struct ShardIndex {
  std::vector<std::string> shards;  // in first-mention order
  std::map<std::string, std::string> weight_map;
  std::optional<uint64_t> total_size;
};

// A shard must be a file beside the index: no path separators, nothing that names a directory.
bool is_plain_file_name(const std::string& name);

// Parses the index's JSON; `name` is for messages. Errors: Code::bad_data.
Result<ShardIndex> parse_shard_index(std::string_view json, const std::string& name);

// Every tensor of `model` is where the index says, every listed tensor exists, and total_size
// (when given) matches. `index_name` is for messages. Errors: Code::bad_data.
Status check_against_index(const ModelIndex& model, const ShardIndex& index, const std::string& index_name);

}  // namespace tensorinit::format
