// The tensor table: what a JSON parser reads back is the index and the layout, whatever the names
// hold (quotes, backslashes, control characters, non-ASCII), for the arena and pagecache forms.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "stage/table.hpp"

namespace tensorinit::stage {
namespace {

format::ModelIndex odd_index() {
  format::ModelIndex index;
  index.files.push_back({.path = "/models/m/model-\"1\".safetensors"});
  index.files.push_back({.path = "/models/m/model-2.safetensors"});
  const std::vector<std::string> names{"plain.weight", "quote\"back\\slash", "ctl\x01\n\t", "ünï/cödé 名", ""};
  for (size_t i = 0; i < names.size(); ++i)
    index.tensors.push_back({.name = names[i], .dtype = i % 2 ? "BF16" : "F32", .shape = i ? std::vector<uint64_t>{i, 3} : std::vector<uint64_t>{},
                             .file = static_cast<uint32_t>(i % 2), .file_offset = 100 + 8 * i, .bytes = 4 * i});
  return index;
}

}  // namespace

TEST_CASE("table: names and numbers read back exactly, host and pagecache") {
  const TableSource source{.model = "tiny", .type = "image", .path = "/models/m", .url = {}};
  const auto index = odd_index();
  for (auto target : {Target::host, Target::pagecache}) {
    StagedModel staged;
    staged.target = target;
    staged.layout = layout_arena(index);
    const auto table = nlohmann::json::parse(tensor_table_json(source, index, staged));
    CHECK(table["version"] == 1);
    CHECK(table["model"] == "tiny");
    CHECK(table["source"]["type"] == "image");
    CHECK(table["source"]["path"] == "/models/m");
    CHECK(table.contains("arenas") == (target == Target::host));
    REQUIRE(table["tensors"].size() == index.tensors.size());
    for (size_t i = 0; i < index.tensors.size(); ++i) {
      const auto& t = index.tensors[i];
      const auto& e = table["tensors"][i];
      CHECK(e["name"] == t.name);
      CHECK(e["dtype"] == t.dtype);
      CHECK(e["shape"] == t.shape);
      CHECK(e["bytes"] == t.bytes);
      if (target == Target::host) {
        CHECK(e["arena"] == 0);
        CHECK(e["offset"] == staged.layout.offsets[i]);
        CHECK(e["offset"].get<uint64_t>() % kTensorAlign == 0);
      } else {
        CHECK(e["file"] == index.files[t.file].path);
        CHECK(e["file_offset"] == t.file_offset);
      }
    }
  }
}

TEST_CASE("table: no tensors is an empty array") {
  StagedModel staged;
  const auto table = nlohmann::json::parse(tensor_table_json({.model = "empty"}, format::ModelIndex{}, staged));
  CHECK(table["tensors"].is_array());
  CHECK(table["tensors"].empty());
}

}  // namespace tensorinit::stage
