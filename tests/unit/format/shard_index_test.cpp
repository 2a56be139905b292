#include <doctest/doctest.h>

#include <fmt/format.h>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "format/shard_index.hpp"
#include "format/text.hpp"

using namespace tensorinit;
using namespace tensorinit::format;

namespace {

// The reader as it was before the flat one: an nlohmann DOM and std::map/std::set. The flat reader
// must agree with it on every input: the same shards in the same order, the same map, the same
// total, or the same error.
struct Reference {
  std::vector<std::string> shards;
  std::map<std::string, std::string> weight_map;
  std::optional<uint64_t> total_size;
};

Result<Reference> reference_parse(std::string_view text, const std::string& name) {
  nlohmann::json index;
  try {
    index = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    return fail(Code::bad_data, fmt::format("{}: not valid JSON: {}", name, utf8_escaped(e.what())));
  }
  auto map = index.is_object() ? index.find("weight_map") : index.end();
  if (map == index.end() || !map->is_object()) return fail(Code::bad_data, fmt::format("{}: no \"weight_map\" object", name));
  Reference out;
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

void check_same(const std::string& text) {
  INFO("index: " << text);
  const auto flat = parse_shard_index(text, "i.json");
  const auto ref = reference_parse(text, "i.json");
  REQUIRE(flat.has_value() == ref.has_value());
  if (!ref) {
    CHECK(flat.error().message == ref.error().message);
    return;
  }
  CHECK(flat->shards == ref->shards);
  CHECK(flat->total_size == ref->total_size);
  std::map<std::string, std::string> map;
  for (const auto& e : flat->weight_map) map.emplace(std::string(flat->name(e)), flat->shards[e.shard]);
  CHECK(map == ref->weight_map);
  CHECK(flat->weight_map.size() == ref->weight_map.size());
  for (const auto& [tensor, shard] : ref->weight_map) {
    auto at = flat->find(tensor);
    REQUIRE(at.has_value());
    CHECK(flat->shards[flat->weight_map[*at].shard] == shard);
  }
  CHECK_FALSE(flat->find("no such tensor").has_value());
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
