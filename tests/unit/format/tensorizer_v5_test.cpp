// What tensorizer 2.12.1 writes beyond data version 4: version 5 (a dimension of 2^32 or more:
// versioned index entries, u64 dimensions), torch.float4_e2m1fn_x2 (F4 with the last dimension
// doubled); dtypes the table cannot hold ("unsupported dtype", not "malformed"); names that are
// not UTF-8 (refused at index time, so nothing reaches JSON unvalidated). The version 5 file is
// built here byte by byte from tensorizer's serialization.py (_MetadataHandler, the
// versioned_headers flag, "Q" shapes), independently of our writer, which is checked against it.
#include <doctest/doctest.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "io/memory_source.hpp"
#include "format/tensorizer.hpp"
#include "format/tensorizer_writer.hpp"
#include "format/text.hpp"

namespace tensorinit::format {
namespace {

using namespace std::string_literals;

template <class T>
void put(std::string& out, T value) {
  out.append(reinterpret_cast<const char*>(&value), sizeof(T));
}

struct V5Tensor {
  std::string name, dtype;
  std::vector<uint64_t> shape;
  std::string data;
  bool long_shape = false;  // u64 dimensions, index entry tagged 5
};

// A file as tensorizer 2.12.1 lays it out once a long tensor is written: data version 5, flag
// bit 1 (versioned_headers), every index entry prefixed by its u32 version; no hashes.
std::string v5_file(const std::vector<V5Tensor>& tensors, uint32_t version = 5, uint64_t flags = 2) {
  const uint64_t index_len = 1024;
  auto shape_bytes = [](const V5Tensor& t) {
    std::string out;
    put<uint8_t>(out, static_cast<uint8_t>(t.shape.size()));
    for (uint64_t d : t.shape) t.long_shape ? put<uint64_t>(out, d) : put<uint32_t>(out, static_cast<uint32_t>(d));
    return out;
  };
  std::string index, records;
  uint64_t at = 73 + index_len;
  for (const auto& t : tensors) {
    std::string body;
    put<uint16_t>(body, 0);
    put<uint8_t>(body, 0);
    put<uint16_t>(body, static_cast<uint16_t>(t.name.size()));
    body += t.name;
    put<uint8_t>(body, static_cast<uint8_t>(t.dtype.size()));
    body += t.dtype + shape_bytes(t);
    put<uint16_t>(body, 1);  // hash section: no hashes
    put<uint8_t>(body, 0);
    put<int64_t>(body, static_cast<int64_t>(t.data.size()));
    std::string header;
    put<uint64_t>(header, 8 + body.size());
    header += body;
    if (flags & 2) put<uint32_t>(index, t.long_shape ? 5 : 1);
    put<uint16_t>(index, static_cast<uint16_t>(t.name.size()));
    index += t.name;
    put<uint8_t>(index, 0);
    put<uint8_t>(index, static_cast<uint8_t>(t.dtype.size()));
    index += t.dtype + shape_bytes(t);
    put<uint64_t>(index, at);
    put<uint64_t>(index, at + header.size());
    put<uint64_t>(index, t.data.size());
    records += header + t.data;
    at += header.size() + t.data.size();
  }
  index.resize(index_len, '\0');
  std::string out = "|TZR|";
  put<uint32_t>(out, version);
  put<uint64_t>(out, flags);
  out.append(24, '\0');
  put<uint64_t>(out, 0);
  put<uint64_t>(out, 0);
  put<uint64_t>(out, tensors.size());
  put<uint64_t>(out, index_len);
  return out + index + records + std::string(8, '\0');
}

Result<TensorizerLayout> read(const std::string& bytes) {
  io::MemorySource source("t.tensors", bytes);
  return read_tensorizer(source);
}

const TensorEntry& named(const TensorizerLayout& layout, std::string_view name) {
  for (const auto& t : layout.tensors)
    if (t.name == name) return t;
  FAIL("no tensor " << name);
  throw;
}

void check_refused(const std::string& bytes, std::string_view fragment, bool malformed = true) {
  auto r = read(bytes);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == Code::bad_data);
  CHECK_MESSAGE(r.error().message.find("t.tensors") != std::string::npos, r.error().message);
  CHECK_MESSAGE(r.error().message.find(fragment) != std::string::npos, r.error().message);
  CHECK_MESSAGE((r.error().message.find("malformed") != std::string::npos) == malformed, r.error().message);
  CHECK_NOTHROW((void)nlohmann::json(r.error().message).dump());  // the report's "error" field
}

const std::vector<V5Tensor> kLongFile = {
    {"w", "<f4", {2}, "abcdefgh"},
    {"long", "|u1", {uint64_t{1} << 32, 0}, "", true},  // 2^32 x 0: no bytes, but a long shape
    {".b", "<V2\0torch.bfloat16"s, {1}, "xy"},
};

}  // namespace

TEST_CASE("format: tensorizer data version 5 (tensorizer 2.12.1, a dimension of 2^32 or more) indexes") {
  const std::string bytes = v5_file(kLongFile);
  auto r = read(bytes);
  REQUIRE_MESSAGE(r.has_value(), r.error().message);
  CHECK(r->version == 5);
  REQUIRE(r->tensors.size() == 3);
  const auto& w = named(*r, "w");
  CHECK(bytes.substr(w.file_offset, w.bytes) == "abcdefgh");
  CHECK(named(*r, "long").shape == tensorinit::format::Shape{uint64_t{1} << 32, 0});
  CHECK(named(*r, "long").bytes == 0);
  CHECK(bytes.substr(named(*r, "b").file_offset, 2) == "xy");
  // Version 5 without the flag: entries are untagged (version 1 layout).
  auto plain = read(v5_file({kLongFile[0], kLongFile[2]}, 5, 0));
  REQUIRE_MESSAGE(plain.has_value(), plain.error().message);
  // A meta tensor with a long shape: 2^32 zeros, nothing in the file.
  auto meta = read(v5_file({{"m", "|u1", {uint64_t{1} << 32}, "", true}}));
  REQUIRE_MESSAGE(meta.has_value(), meta.error().message);
  CHECK(meta->tensors[0].zeros);
  CHECK(meta->tensors[0].bytes == uint64_t{1} << 32);
}

TEST_CASE("format: tensorizer version 5 rules: entry versions, flags, long shapes only where needed") {
  check_refused(v5_file(kLongFile, 4, 2), "unknown feature flags for data version 4");
  auto bad_tag = v5_file(kLongFile);
  bad_tag[73] = 2;  // the first entry's version
  check_refused(bad_tag, "index entry 1 of 3: unknown entry version 2");
  auto needless = kLongFile;
  needless[0].long_shape = true;  // u64 dimensions that all fit 32 bits: not what tensorizer writes
  check_refused(v5_file(needless), "tagged data version 5");
  auto overflow = kLongFile;
  overflow[1].shape = {uint64_t{1} << 32, uint64_t{1} << 32};
  overflow[1].dtype = "<f4";
  check_refused(v5_file(overflow), "byte size overflows");
}

TEST_CASE("format: our writer's data version 5 matches the hand-built layout byte for byte") {
  std::vector<TensorizerTensor> tensors = {{"w", "F32", {2}}, {"long", "U8", {uint64_t{1} << 32, 0}}, {".b", "BF16", {1}}};
  auto bytes = write_tensorizer_bytes(tensors, {"abcdefgh", "", "xy"});
  REQUIRE_MESSAGE(bytes.has_value(), bytes.error().message);
  auto r = read(*bytes);
  REQUIRE_MESSAGE(r.has_value(), r.error().message);
  CHECK(r->version == 5);
  CHECK(named(*r, "long").shape == tensorinit::format::Shape{uint64_t{1} << 32, 0});
  // The file header (flags included) and the first index entry as tensorizer writes them.
  const std::string hand = v5_file(kLongFile);
  CHECK(bytes->substr(0, 41) == hand.substr(0, 41));
  CHECK(bytes->substr(73, 4 + 2 + 1 + 1 + 1 + 3 + 1 + 4) == hand.substr(73, 4 + 2 + 1 + 1 + 1 + 3 + 1 + 4));
}

TEST_CASE("format: torch.float4_e2m1fn_x2 is F4 with the last dimension doubled, as in safetensors") {
  const std::string fp4 = "|V1\0torch.float4_e2m1fn_x2"s;
  CHECK(tensorizer_dtype(fp4) == "F4");
  CHECK(tensorizer_dtype("<V2\0torch.float4_e2m1fn_x2"s) == "");
  auto r = read(v5_file({{"q", fp4, {3, 2}, "abcdef"}}, 2, 0));
  REQUIRE_MESSAGE(r.has_value(), r.error().message);
  CHECK(r->tensors[0].dtype == "F4");
  CHECK(r->tensors[0].shape == tensorinit::format::Shape{3, 4});
  CHECK(r->tensors[0].bytes == 6);
  check_refused(v5_file({{"q", fp4, {}, "a"}}, 2, 0), "unsupported dtype torch.float4_e2m1fn_x2 without a dimension",
                false);
  // Our writer halves the last dimension back.
  auto bytes = write_tensorizer_bytes({{"q", "F4", {3, 4}}}, {"abcdef"});
  REQUIRE_MESSAGE(bytes.has_value(), bytes.error().message);
  auto back = read(*bytes);
  REQUIRE_MESSAGE(back.has_value(), back.error().message);
  CHECK(back->tensors[0].shape == tensorinit::format::Shape{3, 4});
  CHECK(bytes->find(fp4) != std::string::npos);
}

TEST_CASE("format: a tensorizer dtype the table cannot hold is 'unsupported dtype', not malformed") {
  check_refused(v5_file({{"c", "<c16", {1}, std::string(16, 'c')}}, 1, 0),
                "tensor 'c': unsupported dtype complex128 (numpy '<c16')", false);
  check_refused(v5_file({{"c", "<V4\0torch.complex32"s, {1}, "cccc"}}, 2, 0),
                "unsupported dtype 'torch.complex32' (stored as \"<V4\\x00torch.complex32\")", false);
  check_refused(v5_file({{"c", "<x9", {1}, "c"}}, 1, 0), "unsupported dtype '<x9'", false);
}

TEST_CASE("format: a tensorizer name that is not UTF-8 is refused at index time, naming its position") {
  check_refused(v5_file({{"ok", "|u1", {1}, "a"}, {"bad\xff", "|u1", {1}, "b"}}, 1, 0),
                "tensor 2 of 2: its name is not valid UTF-8 (byte 3): \"bad\\xff\"");
  check_refused(v5_file({{"\x1e[\"a\xc0\xaf\"]", "|u1", {1}, "a"}}, 1, 0), "tensor 1 of 1: its name is not valid UTF-8");
  // A dtype code that is not UTF-8 is named escaped.
  check_refused(v5_file({{"d", "<f\xfe", {1}, "a"}}, 1, 0), "unsupported dtype \"<f\\xfe\"", false);
}

TEST_CASE("format: text helpers: UTF-8 validation and escaping for messages") {
  CHECK_FALSE(invalid_utf8_at("plain ascii, é, ✓, 😀").has_value());
  CHECK(invalid_utf8_at("ab\xff") == 2u);
  CHECK(invalid_utf8_at("\xc0\xaf") == 0u);          // overlong '/'
  CHECK(invalid_utf8_at("a\xed\xa0\x80") == 1u);     // a surrogate
  CHECK(invalid_utf8_at("\xf4\x90\x80\x80") == 0u);  // above U+10FFFF
  CHECK(invalid_utf8_at("\xe2\x82") == 0u);          // cut short
  CHECK(utf8_escaped("a\xff\xe2\x82\xac") == "a\\xff\xe2\x82\xac");
  CHECK(printable("name") == "'name'");
  CHECK(printable("a\nb") == "\"a\\nb\"");
  CHECK(printable("a\xff") == "\"a\\xff\"");
  CHECK(printable("\x1e[\"x\"]") == "\"\\x1e[\\\"x\\\"]\"");
  for (const std::string& text : {"a\xff"s, "\xed\xa0\x80"s, "\xc0"s, "q\"\\\x7f"s})
    CHECK_NOTHROW((void)nlohmann::json(printable(text) + utf8_escaped(text)).dump());
}

}  // namespace tensorinit::format
