#include <doctest/doctest.h>

#include <fmt/format.h>
#include <random>

#include "../../fuzz/shard_index_reference.hpp"

using namespace tensorinit;
using namespace tensorinit::format;

namespace {

void check_same(const std::string& text) {
  INFO("index: " << text);
  CHECK(reference::difference(text) == "");
  const auto flat = parse_shard_index(text, "i.json");
  if (flat) CHECK_FALSE(flat->find("no such tensor").has_value());
}

}  // namespace

TEST_CASE("shard index: the flat reader agrees with the DOM reader on chosen inputs") {
  for (const char* text : {
           R"({"weight_map":{"a":"s1","b":"s2"}})",
           R"({"weight_map":{"b":"s2","a":"s1","c":"s2"},"metadata":{"total_size":16}})",
           R"({"weight_map":{"z":"s1","a":"s2"}})",                       // shard order: by sorted name
           R"({"weight_map":{"a":"s1","a":"s2"}})",                       // a repeated key: the last value
           R"({"weight_map":{"a":"s1","b":"s2","a":"s3"}})",              // s1 named only by the replaced one
           R"({"weight_map":{"a":5,"a":"s1"}})",                          // invalid, then replaced
           R"({"weight_map":{"a":"s1","a":5}})",                          // valid, then replaced by invalid
           R"({"weight_map":{"b":1,"a":[],"c":"s"}})",                    // the first invalid by name: a
           R"({"weight_map":{"a":{"x":"s1"}}})",
           R"({"weight_map":{"a":"../x"}})", R"({"weight_map":{"a":"."}})", R"({"weight_map":{"a":""}})",
           R"({"weight_map":{"a":"x\u0000y"}})", R"({"weight_map":{"a":"d/x"}})",
           R"({"weight_map":{}})", R"({"weight_map":[]})", R"({"weight_map":"x"})", R"({"metadata":{}})",
           R"([{"weight_map":{"a":"s"}}])", R"("weight_map")", "5", "", "{", R"({"weight_map":{"a":"s")",
           R"({"weight_map":{"a":"s1"},"weight_map":{"b":"s2"}})",         // a repeated top key: the last
           R"({"weight_map":{"a":"s1"},"weight_map":3})",
           R"({"weight_map":{"a":"s1","b":"s2"},"weight_map":{"c":"s3","d":"s3"}})",  // fuzz: read past the shards
           R"({"weight_map":{"a":"s1"},"weight_map":[2,"s1"]})",                    // fuzz: an array read as the map
           R"({"weight_map":{"a":"s1"},"metadata":{"total_size":5},"metadata":[7]})",
           R"({"weight_map":{"a":"s1"},"metadata":{"total_size":-1}})",
           R"({"weight_map":{"a":"s1"},"metadata":{"total_size":1.5}})",
           R"({"weight_map":{"a":"s1"},"metadata":{"total_size":"7"}})",
           R"({"weight_map":{"a":"s1"},"metadata":{"total_size":7,"total_size":8}})",
           R"({"weight_map":{"a":"s1"},"metadata":{"total_size":7},"metadata":{}})",
           R"({"weight_map":{"a":"s1"},"metadata":{"total_size":{"total_size":3}}})",
           R"({"weight_map":{"a":"s1"},"metadata":[{"total_size":3}]})",
           R"({"weight_map":{"a":"s1"},"metadata":{"x":{"total_size":3}}})",
           R"({"x":{"weight_map":{"a":"s9"}},"weight_map":{"a":"s1","\u00e9":"s2","\u0001":"s3"}})",
           "{\"weight_map\":{\"a\":\"s\xff\"}}",
           R"({"weight_map":{"a":"s1"},"metadata":{"total_size":99999999999999999999}})",
       })
    check_same(text);
}

TEST_CASE("shard index: the flat reader agrees with the DOM reader on random indexes") {
  std::mt19937_64 rng(15);
  const std::vector<std::string> values = {R"("s1")", R"("s2")", R"("s3.zst")", R"("../s")", "7", "null", R"({"a":"s1"})",
                                           R"(["s1"])", R"("")", R"("s1")", R"("s2")"};
  for (int round = 0; round < 2000; ++round) {
    std::string map;
    const int n = static_cast<int>(rng() % 12);
    for (int i = 0; i < n; ++i) {
      std::string key(1 + rng() % 2, 'a');
      for (auto& c : key) c = static_cast<char>('a' + rng() % 4);
      map += fmt::format(R"({}"{}":{})", i ? "," : "", key, values[rng() % values.size()]);
    }
    std::string text = fmt::format(R"({{"weight_map":{{{}}})", map);
    if (rng() % 4 == 0) text += fmt::format(R"(,"metadata":{{"total_size":{}}})", rng() % 3 ? "12" : "-3");
    if (rng() % 8 == 0) text += R"(,"weight_map":{"b":"s2"})";
    text += "}";
    check_same(text);
  }
}

TEST_CASE("shard index: 300,000 entries in three shards, every one found") {
  std::string text = R"({"metadata":{"total_size":1},"weight_map":{)";
  for (int i = 0; i < 300'000; ++i) text += fmt::format(R"({}"layers.{}.experts.w":"model-{}.safetensors")", i ? "," : "", i, i % 3);
  text += "}}";
  auto index = parse_shard_index(text, "i.json");
  REQUIRE(index.has_value());
  CHECK(index->shards == std::vector<std::string>{"model-0.safetensors", "model-1.safetensors", "model-2.safetensors"});
  REQUIRE(index->weight_map.size() == 300'000);
  for (int i = 0; i < 300'000; i += 997) {
    auto at = index->find(fmt::format("layers.{}.experts.w", i));
    REQUIRE(at.has_value());
    CHECK(index->shards[index->weight_map[*at].shard] == fmt::format("model-{}.safetensors", i % 3));
  }
}
