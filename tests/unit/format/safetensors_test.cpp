// The safetensors reader against the golden file (byte-exact tensors, hashed by sha256sum) and
// against every rejection formats.md lists, each built by hand: malformed -> Code::bad_data naming
// the file and the fault; cut short -> Code::no_source ("incomplete").
#include <doctest/doctest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "io/memory_source.hpp"
#include "format/safetensors.hpp"
#include "format/safetensors_writer.hpp"
#include "io/file_source.hpp"
#include "test_files.hpp"

namespace {

using namespace tensorinit;
using namespace tensorinit::format;
using tensorinit::io::MemorySource;
using tensorinit::testing::raw_safetensors;
using tensorinit::testing::TempDir;
using tensorinit::testing::with_header_length;
using namespace std::string_literals;

const std::string kGolden = TENSORINIT_FIXTURES "/tiny-f16.safetensors";
constexpr const char* kName = "/models/m.safetensors";

Result<SafetensorsLayout> parse(std::string_view header) { return parse_safetensors_header(header, 8 + header.size(), kName); }

Result<SafetensorsLayout> read_bytes(std::string_view bytes) {
  MemorySource source(kName, bytes);
  return read_safetensors(source);
}

// The error must be `code`, name the file, and say `what`.
void check_error(const Result<SafetensorsLayout>& r, Code code, std::string_view what) {
  REQUIRE_FALSE(r.has_value());
  INFO("message: " << r.error().message);
  CHECK(r.error().code == code);
  CHECK(r.error().message.find(kName) != std::string::npos);
  CHECK(r.error().message.find(what) != std::string::npos);
  CHECK(r.error().message.find('\n') == std::string::npos);
}

std::string tensor(std::string_view dtype, std::string_view shape, uint64_t begin, uint64_t end) {
  return fmt::format(R"({{"dtype":"{}","shape":{},"data_offsets":[{},{}]}})", dtype, shape, begin, end);
}

// Eight U8 tensors of 2^61 - 8 bytes back to back: each size fits, but the last end plus the
// header length does not fit in 64 bits.
std::string eight_huge_tensors() {
  constexpr uint64_t kBytes = (1ull << 61) - 8;
  std::string header = "{";
  for (uint64_t i = 0; i < 8; ++i)
    header += fmt::format(R"({}"t{}":)", i ? "," : "", i) + tensor("U8", fmt::format("[{}]", kBytes), i * kBytes, (i + 1) * kBytes);
  return header + "}";
}

}  // namespace

TEST_CASE("format: the golden tiny-f16.safetensors parses with byte-exact tensors") {
  auto source = io::FileSource::open(kGolden);
  REQUIRE_MESSAGE(source.has_value(), source.error().message);
  auto layout = read_safetensors(**source);
  REQUIRE_MESSAGE(layout.has_value(), layout.error().message);
  CHECK(layout->data_start + layout->data_size == (*source)->size());

  const auto expect = nlohmann::json::parse(testing::read_file(kGolden + ".expect.json"));
  std::map<std::string, const TensorEntry*> by_name;
  for (const auto& t : layout->tensors) by_name[t.name] = &t;
  CHECK(by_name.size() == layout->tensors.size());
  REQUIRE(layout->tensors.size() == expect["tensors"].size());

  const std::string file = testing::read_file(kGolden);
  TempDir dir;
  for (const auto& e : expect["tensors"]) {
    const auto name = e["name"].get<std::string>();
    CAPTURE(name);
    REQUIRE(by_name.count(name) == 1);
    const TensorEntry& t = *by_name[name];
    CHECK(t.dtype == e["dtype"].get<std::string>());
    CHECK(std::vector<uint64_t>(t.shape.begin(), t.shape.end()) == e["shape"].get<std::vector<uint64_t>>());
    REQUIRE(t.file_offset + t.bytes <= file.size());
    CHECK(testing::sha256sum(dir, std::string_view(file).substr(t.file_offset, t.bytes)) == e["sha256"].get<std::string>());
  }
}

TEST_CASE("format: sha256sum helper gives the FIPS 180-2 digest of 'abc'") {
  TempDir dir;
  CHECK(testing::sha256sum(dir, "abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_CASE("format: every proper prefix of the golden file is incomplete, one extra byte is trailing") {
  const std::string file = testing::read_file(kGolden);
  int wrong = 0;
  for (size_t len = 0; len < file.size(); ++len) {
    auto r = read_bytes(std::string_view(file).substr(0, len));
    if (r.has_value() || r.error().code != Code::no_source ||
        r.error().message.find("incomplete") == std::string::npos) {
      if (++wrong < 5) FAIL_CHECK("prefix of " << len << " bytes: " << (r ? "accepted" : r.error().message));
    }
  }
  CHECK(wrong == 0);
  check_error(read_bytes(file + '\0'), Code::bad_data, "1 trailing bytes");
}

TEST_CASE("format: a valid header tiles the data section; tensors sorted by offset, offsets absolute") {
  const std::string header = R"({"__metadata__":{"format":"pt"},"b":)" + tensor("F32", "[2]", 4, 12) + R"(,"a":)" +
                             tensor("BF16", "[2,1]", 0, 4) + R"(,"z":)" + tensor("U8", "[0]", 12, 12) + "}    ";
  auto r = read_bytes(raw_safetensors(header, std::string(12, 'x')));
  REQUIRE_MESSAGE(r.has_value(), r.error().message);
  CHECK(r->data_start == 8 + header.size());
  CHECK(r->data_size == 12);
  REQUIRE(r->tensors.size() == 3);
  CHECK(r->tensors[0].name == "a");
  CHECK(r->tensors[0].file_offset == r->data_start);
  CHECK(r->tensors[0].shape == tensorinit::format::Shape{2, 1});
  CHECK(r->tensors[1].name == "b");
  CHECK(r->tensors[1].file_offset == r->data_start + 4);
  CHECK(r->tensors[1].bytes == 8);
  CHECK(r->tensors[2].name == "z");
  CHECK(r->tensors[2].bytes == 0);
}

TEST_CASE("format: an empty header object is a valid file with no tensors") {
  auto r = read_bytes(raw_safetensors("{}"));
  REQUIRE_MESSAGE(r.has_value(), r.error().message);
  CHECK(r->tensors.empty());
  CHECK(r->data_size == 0);
}

TEST_CASE("format: sub-byte dtypes must fill whole bytes") {
  CHECK(parse(R"({"a":)" + tensor("F4", "[2]", 0, 1) + "}").has_value());
  CHECK(parse(R"({"a":)" + tensor("F6_E2M3", "[4]", 0, 3) + "}").has_value());
  check_error(parse(R"({"a":)" + tensor("F4", "[3]", 0, 2) + "}"), Code::bad_data, "not whole bytes");
  check_error(parse(R"({"a":)" + tensor("F6_E3M2", "[2]", 0, 2) + "}"), Code::bad_data, "not whole bytes");
}

TEST_CASE("format: safetensors_head writes what read_safetensors reads back") {
  std::vector<TensorSpec> specs{{"w", "BF16", {3, 5}, 30}, {"b", "F32", {5}, 20}, {"m", "BOOL", {7}, 7}};
  const std::string head = safetensors_head(specs, {{"format", "pt"}});
  CHECK((head.size() - 8) % 8 == 0);
  auto r = read_bytes(head + std::string(57, '\1'));
  REQUIRE_MESSAGE(r.has_value(), r.error().message);
  REQUIRE(r->tensors.size() == 3);
  CHECK(r->data_start == head.size());
  CHECK(r->tensors[0].name == "w");
  CHECK(r->tensors[1].file_offset == head.size() + 30);
  CHECK(r->tensors[2].shape == tensorinit::format::Shape{7});
}

TEST_CASE("format: header rejections are bad_data naming the file and the fault") {
  const std::string ok = tensor("F16", "[2]", 0, 4);
  struct Case {
    const char* label;
    std::string header;
    const char* what;
  };
  const std::vector<Case> cases{
      {"empty header", "", "does not start with '{'"},
      {"leading space", " {}", "does not start with '{'"},
      {"array", "[1,2]", "does not start with '{'"},
      {"string", R"("abc")", "does not start with '{'"},
      {"bad JSON", R"({"a": )", "not valid JSON"},
      {"two values", "{}{}", "not valid JSON"},
      {"NUL padding", "{}\0\0\0"s, "NUL byte at offset 2"},
      {"NUL then garbage", R"({"a":)" + ok + "}\0garbage"s, "NUL byte"},
      {"NUL inside a string", "{\"__metadata__\":{\"k\":\"a\0b\"}}"s, "NUL byte"},
      {"invalid UTF-8 in a key", "{\"a\xff\":" + ok + "}", "not valid UTF-8 (byte 3 of the header, file offset 11)"},
      {"overlong UTF-8", "{\"a\xc0\xaf\":" + ok + "}", "not valid UTF-8"},
      {"UTF-8 surrogate", "{\"a\xed\xa0\x80\":" + ok + "}", "not valid UTF-8 (byte 3"},
      {"above U+10FFFF", "{\"a\xf4\x90\x80\x80\":" + ok + "}", "not valid UTF-8"},
      {"truncated sequence at the end", "{}  \xe2\x82"s, "not valid UTF-8 (byte 4"},
      {"invalid UTF-8 in metadata", "{\"__metadata__\":{\"k\":\"\xfe\"}}", "not valid UTF-8"},
      {"invalid UTF-8 in a dtype", R"({"a":)" + tensor("F1\x80", "[2]", 0, 4) + "}", "not valid UTF-8"},
      {"lone surrogate", R"({"__metadata__":{"k":"\ud800"}})", "not valid JSON"},
      {"raw byte outside a string", "{\xe9}", "not valid UTF-8"},
      {"a character cut by the parser's quote", "{\"a\":tru\xe2\x82\xac}", "not valid JSON"},
      {"duplicate tensor", R"({"a":)" + ok + R"(,"a":)" + ok + "}", "duplicate key 'a'"},
      {"duplicate via escape", R"({"a":)" + ok + R"(,"\u0061":)" + ok + "}", "duplicate key 'a'"},
      {"duplicate inside a tensor", R"({"a":{"dtype":"F16","dtype":"F16","shape":[2],"data_offsets":[0,4]}})",
       "duplicate key 'dtype'"},
      {"duplicate in metadata", R"({"__metadata__":{"k":"1","k":"2"}})", "duplicate key 'k'"},
      {"tensor not an object", R"({"a":5})", "tensor 'a' is not an object"},
      {"missing data_offsets", R"({"a":{"dtype":"F16","shape":[2]}})", "lacks dtype, shape or data_offsets"},
      {"dtype not a string", R"({"a":{"dtype":16,"shape":[2],"data_offsets":[0,4]}})", "dtype is not a string"},
      {"unknown dtype", R"({"a":)" + tensor("F17", "[2]", 0, 4) + "}", "tensor 'a': unsupported dtype 'F17'"},
      {"lower-case dtype", R"({"a":)" + tensor("f16", "[2]", 0, 4) + "}", "unsupported dtype 'f16'"},
      {"complex128", R"({"a":)" + tensor("C128", "[2]", 0, 32) + "}", "unsupported dtype 'C128'"},
      {"a name with a newline", R"({"a\nb":5})", R"(tensor "a\nb" is not an object)"},
      {"shape not an array", R"({"a":)" + tensor("F16", "2", 0, 4) + "}", "shape is not an array"},
      {"negative shape", R"({"a":)" + tensor("F16", "[-2]", 0, 4) + "}", "negative or non-integer"},
      {"float shape", R"({"a":)" + tensor("F16", "[2.0]", 0, 4) + "}", "negative or non-integer"},
      {"string shape", R"({"a":)" + tensor("F16", R"(["2"])", 0, 4) + "}", "negative or non-integer"},
      {"huge shape", R"({"a":)" + tensor("F16", "[18446744073709551616]", 0, 4) + "}", "negative or non-integer"},
      {"element count overflow", R"({"a":)" + tensor("U8", "[4294967296,4294967296]", 0, 0) + "}",
       "element count overflows"},
      {"byte size overflow", R"({"a":)" + tensor("F32", "[4611686018427387904]", 0, 0) + "}", "byte size overflows"},
      {"shape mismatch", R"({"a":)" + tensor("F16", "[2,2]", 0, 6) + "}", "give 8 bytes but data_offsets span 6"},
      {"offsets reversed", R"({"a":)" + tensor("U8", "[0]", 4, 0) + "}", "end before begin"},
      {"offsets not a pair", R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0]}})", "not [begin, end]"},
      {"offsets negative", R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[-1,0]}})", "not [begin, end]"},
      {"hole", R"({"a":)" + tensor("F16", "[2]", 0, 4) + R"(,"b":)" + tensor("F16", "[2]", 8, 12) + "}",
       "hole of 4 bytes before tensor 'b'"},
      {"overlap", R"({"a":)" + tensor("F32", "[2]", 0, 8) + R"(,"b":)" + tensor("F16", "[4]", 4, 12) + "}",
       "tensor 'b' overlaps"},
      {"same range twice", R"({"a":)" + ok + R"(,"b":)" + ok + "}", "overlaps"},
      {"not starting at 0", R"({"a":)" + tensor("F16", "[2]", 4, 8) + "}", "not at 0"},
      {"end overflows the file offset", eight_huge_tensors(), "data_offsets overflow a 64-bit file offset"},
      {"metadata not an object", R"({"__metadata__":[]})", "__metadata__ is not an object"},
      {"metadata value not a string", R"({"__metadata__":{"k":1}})", "__metadata__ 'k' is not a string"},
  };
  for (const auto& c : cases) {
    INFO("case: " << std::string(c.label));
    check_error(parse(c.header), Code::bad_data, c.what);
    // Messages reach the report (JSON): never a newline, never invalid UTF-8.
    auto r = parse(c.header);
    CHECK(r.error().message.find('\n') == std::string::npos);
    CHECK_NOTHROW((void)nlohmann::json(r.error().message).dump());
    // The same through a whole file, with enough data that only the header is at fault.
    check_error(read_bytes(raw_safetensors(c.header, std::string(16, '\0'))), Code::bad_data, c.what);
  }
}

TEST_CASE("format: file-level limits: short, oversized header length, header past the end, trailing bytes") {
  check_error(read_bytes(""), Code::no_source, "incomplete");
  check_error(read_bytes("\x02\0\0\0\0\0\0"s), Code::no_source, "incomplete");
  check_error(read_bytes(with_header_length(100'000'001, "{}")), Code::bad_data, "exceeds the 100,000,000-byte limit");
  check_error(read_bytes(with_header_length(UINT64_MAX, "{}")), Code::bad_data, "exceeds");
  check_error(read_bytes(with_header_length(1ull << 63, "{}")), Code::bad_data, "exceeds");
  check_error(read_bytes(with_header_length(100'000'000, "{}")), Code::no_source, "runs past the end");
  check_error(read_bytes(with_header_length(3, "{}")), Code::no_source, "runs past the end");
  const std::string header = R"({"a":)" + tensor("F16", "[2]", 0, 4) + "}";
  check_error(read_bytes(raw_safetensors(header, "abc")), Code::no_source, "incomplete");
  check_error(read_bytes(raw_safetensors(header, "abcdefgh")), Code::bad_data, "4 trailing bytes");
  CHECK(read_bytes(raw_safetensors(header, "abcd")).has_value());
}

TEST_CASE("format: read_safetensors on real files names the path") {
  TempDir dir;
  const std::string path = dir / "bad.safetensors";
  testing::write_file(path, raw_safetensors(R"({"a":)" + tensor("F16", "[2,2]", 0, 6) + "}", "123456"));
  auto source = io::FileSource::open(path);
  REQUIRE(source.has_value());
  auto r = read_safetensors(**source);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == Code::bad_data);
  CHECK(r.error().message.rfind(path + ": ", 0) == 0);
}
