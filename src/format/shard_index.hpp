// model.safetensors.index.json: which shard holds each tensor. Read from a local directory or
// fetched from a remote prefix; either way checked against the shards' own headers.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "format/tensor_index.hpp"
#include "util/error.hpp"
#include "util/name_table.hpp"

namespace tensorinit::format {

inline constexpr const char* kShardIndexName = "model.safetensors.index.json";
// Real index files are a few hundred KiB; anything near this is not one (and is not read into memory).
inline constexpr uint64_t kMaxShardIndexBytes = 100'000'000;

// The index as a JSON object reads: a key given twice keeps its last value. Flat, for indexes of
// hundreds of thousands of tensors: the names back to back in one buffer, a hash table over them.
// Measured here: the nlohmann DOM of 100,000 entries checked with std::set/std::map cost 0.43 s of
// CPU against 0.21 s for the same tensors in one file (see docs/notes/light.md for what it is now).
struct ShardIndex {
  struct Entry {
    uint32_t name_at = 0;    // into `names`
    uint32_t name_size = 0;
    uint32_t shard = 0;      // into `shards`
  };
  // In the order of first mention with the weight_map's keys sorted (byte order), as a JSON
  // object's keys iterate.
  std::vector<std::string> shards;
  std::string names;
  std::vector<Entry> weight_map;  // distinct names, in the order first written
  NameTable by_name{0};           // weight_map positions by name
  std::optional<uint64_t> total_size;

  std::string_view name(const Entry& e) const { return std::string_view(names).substr(e.name_at, e.name_size); }
  // The position in weight_map of `tensor`, or nullopt. Thread-safe (const).
  std::optional<size_t> find(std::string_view tensor) const {
    return by_name.find(tensor, [&](size_t i) { return name(weight_map[i]); });
  }
};

// A shard must be a file beside the index: no path separators, nothing that names a directory.
bool is_plain_file_name(std::string_view name);

// Parses the index's JSON; `name` is for messages. Errors: Code::bad_data.
Result<ShardIndex> parse_shard_index(std::string_view json, const std::string& name);

// Every tensor of `model` is where the index says, every listed tensor exists, and total_size
// (when given) matches. `index_name` is for messages. Errors: Code::bad_data.
Status check_against_index(const ModelIndex& model, const ShardIndex& index, const std::string& index_name);

}  // namespace tensorinit::format
