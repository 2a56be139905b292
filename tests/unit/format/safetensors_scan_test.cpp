// The fast path of the safetensors header reader: what it takes, where it gives up (the full JSON
// parser then decides), and that both paths give one answer. The many-tensor case is the
// regression for issue 15 part 6 (a DOM per entry, then a quadratic duplicate check, made a header
// of 40,000 tensors take 79 s): not timed, but a quadratic reader would not finish it in the
// suite's time limit.
#include <doctest/doctest.h>

#include <algorithm>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <stop_token>
#include <string>
#include <vector>

#include "format/safetensors.hpp"
#include "format/safetensors_scan.hpp"
#include "format/safetensors_writer.hpp"

namespace {

using namespace tensorinit::format;

std::string entry(std::string_view name, std::string_view body) { return fmt::format(R"("{}":{})", name, body); }

}  // namespace

TEST_CASE("safetensors scan: the writers' form, keys in any order, whitespace and metadata") {
  const std::string text = R"({ "__metadata__" : {"format":"pt", "k":""} ,
    "b": {"shape": [2, 3], "data_offsets": [0, 12], "dtype": "U16"},
    "a":{"dtype":"U8","shape":[],"data_offsets":[12,13]}}   )";
  auto scanned = scan_safetensors_header(text);
  REQUIRE(scanned.has_value());
  REQUIRE(scanned->size() == 2);
  CHECK((*scanned)[0].name == "b");
  CHECK((*scanned)[0].dtype == "U16");
  CHECK((*scanned)[0].shape == tensorinit::format::Shape{2, 3});
  CHECK((*scanned)[0].end == 12);
  CHECK((*scanned)[1].shape.empty());
  auto layout = parse_safetensors_header(text, 8 + text.size(), "m");
  REQUIRE(layout.has_value());
  CHECK(layout->tensors[0].name == "b");
  CHECK(layout->tensors[1].name == "a");
  CHECK(layout->data_size == 13);
}

TEST_CASE("safetensors scan: gives up on what it does not read, and the full parser answers") {
  const std::string ok = R"({"dtype":"U8","shape":[1],"data_offsets":[0,1]})";
  struct Case {
    const char* label;
    std::string header;
    bool valid;  // what the full parser says
  };
  const std::vector<Case> cases{
      {"escaped name", "{" + entry(R"(\u0061)", ok) + "}", true},
      {"escaped slash in a name", "{" + entry(R"(a\/b)", ok) + "}", true},
      {"extra key in a tensor", R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"x":[{}]}})", true},
      {"float dimension", R"({"a":{"dtype":"U8","shape":[1.0],"data_offsets":[0,1]}})", false},
      {"exponent", R"({"a":{"dtype":"U8","shape":[1e0],"data_offsets":[0,1]}})", false},
      {"negative", R"({"a":{"dtype":"U8","shape":[-1],"data_offsets":[0,1]}})", false},
      {"leading zero", R"({"a":{"dtype":"U8","shape":[01],"data_offsets":[0,1]}})", false},
      {"beyond 64 bits", R"({"a":{"dtype":"U8","shape":[18446744073709551616],"data_offsets":[0,1]}})", false},
      {"duplicate tensor", "{" + entry("a", ok) + "," + entry("a", ok) + "}", false},
      {"duplicate key in a tensor", R"({"a":{"dtype":"U8","dtype":"U8","shape":[1],"data_offsets":[0,1]}})", false},
      {"duplicate metadata key", R"({"__metadata__":{"k":"1","k":"2"}})", false},
      {"two metadata", R"({"__metadata__":{},"__metadata__":{}})", false},
      {"metadata value not a string", R"({"__metadata__":{"k":1}})", false},
      {"three offsets", R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1,2]}})", false},
      {"missing key", R"({"a":{"dtype":"U8","shape":[1]}})", false},
      {"trailing comma", "{" + entry("a", ok) + ",}", false},
      {"trailing bytes", "{" + entry("a", ok) + "}x", false},
      {"unterminated", "{" + entry("a", ok), false},
      {"raw tab in a name", "{" + entry("a\tb", ok) + "}", false},
  };
  for (const auto& c : cases) {
    INFO("case: " << c.label);
    CHECK_FALSE(scan_safetensors_header(c.header).has_value());
    CHECK(parse_safetensors_header(c.header, 8 + c.header.size(), "m").has_value() == c.valid);
  }
  auto escaped = parse_safetensors_header(cases[0].header, 8 + cases[0].header.size(), "m");
  REQUIRE(escaped.has_value());
  CHECK(escaped->tensors[0].name == "a");
}

TEST_CASE("safetensors scan: a semantic fault found on the fast path is reported as the full parser words it") {
  // Two faults: the full parser reports the first in name order ('a'), whatever the file order.
  const std::string text = R"({"z":{"dtype":"F17","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[2],"data_offsets":[1,2]}})";
  REQUIRE(scan_safetensors_header(text).has_value());
  auto r = parse_safetensors_header(text, 8 + text.size(), "m");
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().message.find("tensor 'a': shape and dtype give 2 bytes") != std::string::npos);
}

TEST_CASE("safetensors scan: entries one by one; repeated names are the caller's to find") {
  const std::string text = R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"b":{"dtype":"U8","shape":[2,1],"data_offsets":[1,3]},"a":{"dtype":"U8","shape":[1],"data_offsets":[3,4]}})";
  std::vector<std::string> names;
  CHECK(scan_safetensors_entries(text, {}, [&](ScannedTensor& t) { return names.emplace_back(t.name), true; }));
  CHECK(names == std::vector<std::string>{"a", "b", "a"});
  size_t calls = 0;  // `take` ends the scan
  CHECK_FALSE(scan_safetensors_entries(text, {}, [&](ScannedTensor&) { return ++calls, false; }));
  CHECK(calls == 1);
  CHECK_FALSE(scan_safetensors_header(text).has_value());
  auto r = parse_safetensors_header(text, 8 + text.size(), "m");
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().message == "m: malformed safetensors file: duplicate key 'a' in header");
}

TEST_CASE("safetensors scan: 300,000 tensors, linear (issue 15 part 6)") {
  std::vector<TensorSpec> specs;
  for (size_t i = 0; i < 300'000; ++i)
    specs.push_back({fmt::format("model.layers.{}.mlp.experts.{}.scale", i / 256, i % 256), "F32", {1}, 4});
  const std::string head = safetensors_head(specs, {{"format", "pt"}});
  const std::string_view json = std::string_view(head).substr(8);
  auto scanned = scan_safetensors_header(json);
  REQUIRE(scanned.has_value());
  CHECK(scanned->size() == specs.size());
  auto layout = parse_safetensors_header(json, head.size(), "m");
  REQUIRE(layout.has_value());
  REQUIRE(layout->tensors.size() == specs.size());
  CHECK(layout->tensors.back().name == specs.back().name);
  CHECK(layout->tensors.back().file_offset == head.size() + 4 * (specs.size() - 1));
  CHECK(layout->data_size == 4 * specs.size());
}

// Differential: whatever the scanner accepts, a full JSON parser accepts too and reads the same
// entries (random one-byte edits of a valid header: most make it invalid, some keep it valid).
TEST_CASE("safetensors scan: accepts nothing nlohmann rejects, reads what nlohmann reads") {
  const std::string base = std::string(R"({"__metadata__":{"format":"pt"},"a.w":{"dtype":"F32","shape":[2,1],"data_offsets":[0,8]},)") +
                           R"("b":{"shape":[3],"dtype":"U8","data_offsets":[8,11]}, "c" : {"dtype":"BF16","shape":[],"data_offsets":[11,13]}})";
  const std::string alphabet = "{}[]:,\" 0123456789-.eE\\abu\t\n";
  uint64_t state = 12345;
  auto next = [&] { return state = state * 6364136223846793005ull + 1442695040888963407ull, state >> 33; };
  size_t accepted = 0;
  for (int i = 0; i < 20'000; ++i) {
    std::string text = base;
    const size_t at = next() % text.size();
    switch (next() % 3) {
      case 0: text[at] = alphabet[next() % alphabet.size()]; break;
      case 1: text.insert(at, 1, alphabet[next() % alphabet.size()]); break;
      default: text.erase(at, 1);
    }
    auto scanned = scan_safetensors_header(text);
    if (!scanned) continue;
    ++accepted;
    INFO("header: " << text);
    nlohmann::json doc;
    REQUIRE_NOTHROW(doc = nlohmann::json::parse(text));
    size_t tensors = 0;
    for (const auto& [key, value] : doc.items()) {
      if (key == "__metadata__") continue;
      ++tensors;
      auto it = std::find_if(scanned->begin(), scanned->end(), [&](const ScannedTensor& t) { return t.name == key; });
      REQUIRE(it != scanned->end());
      CHECK(value["dtype"] == std::string(it->dtype));
      CHECK(value["shape"].get<std::vector<uint64_t>>() == std::vector<uint64_t>(it->shape.begin(), it->shape.end()));
      CHECK(value["data_offsets"][0] == it->begin);
      CHECK(value["data_offsets"][1] == it->end);
    }
    CHECK(tensors == scanned->size());  // no duplicate the DOM would have merged
  }
  CHECK(accepted > 100);
}

TEST_CASE("safetensors: a requested stop ends the parse of a large header (Code::stopped)") {
  std::vector<TensorSpec> specs;
  for (size_t i = 0; i < 20'000; ++i) specs.push_back({fmt::format("t{}", i), "U8", {1}, 1});
  const std::string head = safetensors_head(specs, {});
  std::stop_source stop;
  stop.request_stop();
  auto r = parse_safetensors_header(std::string_view(head).substr(8), head.size(), "m", stop.get_token());
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == tensorinit::Code::stopped);
  CHECK(parse_safetensors_header(std::string_view(head).substr(8), head.size(), "m").has_value());
}

TEST_CASE("safetensors scan: a backslash or control byte anywhere in a name makes it give up; other bytes are the name") {
  // Each byte at each position of names up to 24 bytes long (three words and a tail): a backslash or
  // a byte below 0x20 makes the scanner give up; the others (space, DEL, UTF-8) are part of the name.
  const std::string body = R"({"dtype":"U8","shape":[1],"data_offsets":[0,1]})";
  const std::vector<std::string> given_up{"\\", std::string(1, '\0'), "\x01", "\x1f", "\n"};
  const std::vector<std::string> kept{" ", "\x7f", "\xc3\xa9", "!", "#", "]", "\xff"};
  for (size_t len = 0; len <= 24; ++len) {
    for (size_t at = 0; at <= len; ++at) {
      const std::string before(at, 'n'), after(len - at, 'm');
      for (const auto& b : given_up) {
        const std::string name = before + b + after;
        INFO("name " << len << " bytes, byte " << int(static_cast<unsigned char>(b[0])) << " at " << at);
        CHECK_FALSE(scan_safetensors_header("{" + entry(name, body) + "}").has_value());
      }
      for (const auto& k : kept) {
        const std::string name = before + k + after;
        INFO("name " << len << " bytes, byte " << int(static_cast<unsigned char>(k[0])) << " at " << at);
        const std::string text = "{" + entry(name, body) + "}";  // the names point into it
        auto scanned = scan_safetensors_header(text);
        REQUIRE(scanned.has_value());
        CHECK((*scanned)[0].name == name);
      }
    }
    // Cut short: no closing quote, however many bytes follow the opening one.
    CHECK_FALSE(scan_safetensors_header("{\"" + std::string(len, 'x')).has_value());
  }
}
