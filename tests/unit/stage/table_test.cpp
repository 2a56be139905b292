// The tensor table: what a JSON parser reads back is the index and the layout, whatever the names
// hold (quotes, backslashes, control characters, non-ASCII), for the arena and pagecache forms.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <stop_token>
#include <string>

#include "stage/table.hpp"

namespace tensorinit::stage {
namespace {

format::ModelIndex odd_index() {
  format::ModelIndex index;
  index.files.push_back({.path = "/models/m/model-\"1\".safetensors"});
  index.files.push_back({.path = "/models/m/model-2.safetensors"});
  const std::vector<std::string> names{"plain.weight", "quote\"back\\slash", "ctl\x01\n\t", "ünï/cödé 名", ""};
  for (size_t i = 0; i < names.size(); ++i)
    index.tensors.push_back({.name = names[i], .dtype = i % 2 ? "BF16" : "F32", .shape = i ? tensorinit::format::Shape{i, 3} : tensorinit::format::Shape{},
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
      CHECK(e["shape"].get<std::vector<uint64_t>>() == std::vector<uint64_t>(t.shape.begin(), t.shape.end()));
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

// The text byte for byte as the DOM-free writer first wrote it (servers may compare tables).
TEST_CASE("table: the text is unchanged byte for byte, host and pagecache") {
  format::ModelIndex index;
  index.files.push_back({.path = "/m/a.safetensors"});
  index.tensors.push_back({.name = "a.w", .dtype = "F32", .shape = {2, 3}, .file = 0, .file_offset = 8, .bytes = 24});
  index.tensors.push_back({.name = "q\"\x01", .dtype = "BF16", .shape = {}, .file = 0, .file_offset = 32, .bytes = 2});
  const std::string head = "{\n \"model\": \"tiny\",\n \"source\": {\n  \"path\": \"/m\",\n  \"type\": \"image\"\n },\n"
                           " \"version\": 1,\n \"tensors\": [\n";
  StagedModel staged;
  staged.layout = layout_arena(index);
  CHECK(tensor_table_json({.model = "tiny", .type = "image", .path = "/m"}, index, staged) ==
        "{\n \"arenas\": [],\n" + head.substr(2) +
            "  {\"name\": \"a.w\", \"dtype\": \"F32\", \"shape\": [2, 3], \"arena\": 0, \"offset\": 0, \"bytes\": 24},\n"
            "  {\"name\": \"q\\\"\\u0001\", \"dtype\": \"BF16\", \"shape\": [], \"arena\": 0, \"offset\": 256, \"bytes\": 2}\n"
            " ]\n}\n");
  staged.target = Target::pagecache;
  CHECK(tensor_table_json({.model = "tiny", .type = "image", .path = "/m"}, index, staged) ==
        head +
            "  {\"name\": \"a.w\", \"dtype\": \"F32\", \"shape\": [2, 3], \"file\": \"/m/a.safetensors\", \"file_offset\": 8, \"bytes\": 24},\n"
            "  {\"name\": \"q\\\"\\u0001\", \"dtype\": \"BF16\", \"shape\": [], \"file\": \"/m/a.safetensors\", \"file_offset\": 32, \"bytes\": 2}\n"
            " ]\n}\n");
}

TEST_CASE("table: the tensors written ahead are the ones written after; a stopped or unused one is dropped") {
  format::ModelIndex index = odd_index();
  for (int i = 0; i < 10000; ++i)
    index.tensors.push_back({.name = "layer." + std::to_string(i), .dtype = "F32", .shape = {3}, .file_offset = 64 + 12 * uint64_t(i), .bytes = 12});
  const ArenaLayout layout = layout_arena(index);
  const std::string expected = table_tensors_text(index, layout.offsets, false);
  {
    TableTensorsAhead ahead(index, {});
    CHECK(ahead.take(layout) == expected);
  }
  {
    std::stop_source stop;
    stop.request_stop();  // before the thread starts: the text is built at take
    TableTensorsAhead ahead(index, stop.get_token());
    CHECK(ahead.take(layout) == expected);
  }
  {
    ArenaLayout other = layout;
    other.offsets.back() += kTensorAlign;  // not the layout it was built for: built again
    TableTensorsAhead ahead(index, {});
    CHECK(ahead.take(other) == table_tensors_text(index, other.offsets, false));
  }
  std::stop_source stop;
  std::optional<TableTensorsAhead> dropped(std::in_place, index, stop.get_token());
  stop.request_stop();  // a failed load: the thread stops, and is joined
  dropped.reset();
  CHECK(expected.starts_with("\n  {\"name\": \"plain.weight\""));
}

TEST_CASE("table: names far longer than the room made ahead read back exactly") {
  format::ModelIndex index;
  for (int i = 0; i < 300; ++i)  // 300 x ~4,500 bytes escaped: the buffer grows past its first guess many times
    index.tensors.push_back({.name = std::string(size_t(750 + i), char(1 + i % 40)) + "\"\\" + std::to_string(i), .dtype = "F32",
                             .shape = {1, 1}, .file_offset = 8 + 4 * uint64_t(i), .bytes = 4});
  StagedModel staged;
  staged.layout = layout_arena(index);
  const auto table = nlohmann::json::parse(tensor_table_json({.model = "long"}, index, staged));
  REQUIRE(table["tensors"].size() == index.tensors.size());
  for (size_t i = 0; i < index.tensors.size(); ++i) CHECK(table["tensors"][i]["name"] == index.tensors[i].name);
}

TEST_CASE("table: what the thread ahead throws reaches the caller of take, not std::terminate") {
  // attack6: a throw escaping the thread's function (nlohmann's for text that is not UTF-8, a
  // bad_alloc under a memory limit) ended the process with 134 and no error line; the text is
  // built again at take(), whose throw reaches the exit-code boundary as it did before the thread.
  format::ModelIndex index;
  index.tensors.push_back({.name = "bad\xff", .dtype = "F32", .shape = {1}, .file_offset = 8, .bytes = 4});
  TableTensorsAhead ahead(index, {});
  CHECK_THROWS_AS(ahead.take(layout_arena(index)), nlohmann::json::exception);
}

}  // namespace tensorinit::stage
