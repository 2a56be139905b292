// The tensorizer reader against the golden file written by the real tensorizer package
// (byte-exact tensors, hashed by sha256sum) and against hand-built files, each breaking one rule.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "io/memory_source.hpp"
#include "format/model_files.hpp"
#include "format/tensorizer.hpp"
#include "format/tensorizer_header.hpp"
#include "io/file_source.hpp"
#include "test_files.hpp"

namespace tensorinit::format {
namespace {

using namespace std::string_literals;

const std::string kGolden = TENSORINIT_FIXTURES "/tiny-mixed.tensors";

template <class T>
void put(std::string& out, T value) {
  out.append(reinterpret_cast<const char*>(&value), sizeof(T));
}

// One tensor of a hand-built file. data_length < 0 means "the real size of data".
struct Spec {
  std::string name;
  std::string dtype;
  std::vector<uint32_t> shape;
  std::string data;
  int64_t data_length = -1;
};

// A tensorizer file as the writer lays it out: header, index (padded to index_len), records, then
// 8 zero bytes. Each record header carries a CRC-32 and a SHA-256 slot (zero: not a real hash).
struct Builder {
  uint32_t version = 2;
  uint64_t flags = 0;
  uint64_t index_len = 1024;
  std::vector<Spec> specs;

  static std::string record_header(const Spec& s, int64_t data_length) {
    std::string body;
    put<uint16_t>(body, 0);  // module index
    put<uint8_t>(body, 0);   // parameter
    put<uint16_t>(body, static_cast<uint16_t>(s.name.size()));
    body += s.name;
    put<uint8_t>(body, static_cast<uint8_t>(s.dtype.size()));
    body += s.dtype;
    put<uint8_t>(body, static_cast<uint8_t>(s.shape.size()));
    for (auto d : s.shape) put<uint32_t>(body, d);
    put<uint16_t>(body, 1 + 6 + 34);
    put<uint8_t>(body, 2);
    put<uint8_t>(body, 0), put<uint8_t>(body, 4), body.append(4, '\0');
    put<uint8_t>(body, 1), put<uint8_t>(body, 32), body.append(32, '\0');
    put<int64_t>(body, data_length);
    std::string out;
    put<uint64_t>(out, 8 + body.size());
    return out + body;
  }

  std::string build() const {
    std::string index, records;
    uint64_t at = 73 + index_len;
    for (const auto& s : specs) {
      const int64_t len = s.data_length < 0 ? static_cast<int64_t>(s.data.size()) : s.data_length;
      const std::string header = record_header(s, len);
      put<uint16_t>(index, static_cast<uint16_t>(s.name.size()));
      index += s.name;
      put<uint8_t>(index, 0);
      put<uint8_t>(index, static_cast<uint8_t>(s.dtype.size()));
      index += s.dtype;
      put<uint8_t>(index, static_cast<uint8_t>(s.shape.size()));
      for (auto d : s.shape) put<uint32_t>(index, d);
      put<uint64_t>(index, at);
      put<uint64_t>(index, at + header.size());
      put<uint64_t>(index, static_cast<uint64_t>(len));
      records += header + s.data;
      at += header.size() + s.data.size();
    }
    index.resize(index_len, '\0');
    std::string out = "|TZR|";
    put<uint32_t>(out, version);
    put<uint64_t>(out, flags);
    out.append(24, '\0');
    put<uint64_t>(out, 0);  // tensor bytes (unchecked, as by tensorizer itself)
    put<uint64_t>(out, 0);
    put<uint64_t>(out, specs.size());
    put<uint64_t>(out, index_len);
    return out + index + records + std::string(8, '\0');
  }
};

Builder two_tensors() {
  Builder b;
  b.specs.push_back({".bias", "<f4", {2}, std::string("\1\2\3\4\5\6\7\10", 8)});
  b.specs.push_back({"layer.w", "<V2\0torch.bfloat16"s, {3}, "abcdef"});
  return b;
}

Result<TensorizerLayout> read(const std::string& bytes, const std::string& name = "t.tensors") {
  io::MemorySource source(name, bytes);
  return read_tensorizer(source);
}

void check_error(const Result<TensorizerLayout>& r, Code code, std::string_view fragment) {
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == code);
  CHECK_MESSAGE(r.error().message.find("t.tensors") != std::string::npos, r.error().message);
  CHECK_MESSAGE(r.error().message.find(fragment) != std::string::npos, r.error().message);
}

}  // namespace

TEST_CASE("format: the golden tiny-mixed.tensors indexes with byte-exact tensors") {
  auto m = index_local_model(kGolden, format::Format::automatic);
  REQUIRE_MESSAGE(m.has_value(), m.error().message);
  CHECK(m->format == Format::tensorizer);
  REQUIRE(m->files.size() == 1);
  const auto expect = nlohmann::json::parse(testing::read_file(kGolden + ".expect.json"))["tensors"];
  REQUIRE(m->tensors.size() == expect.size());
  const std::string file = testing::read_file(kGolden);
  testing::TempDir dir;
  for (const auto& e : expect) {
    const std::string name = e["name"].get<std::string>();
    auto it = std::find_if(m->tensors.begin(), m->tensors.end(), [&](const TensorEntry& t) { return t.name == name; });
    REQUIRE_MESSAGE(it != m->tensors.end(), name);
    CHECK(it->dtype == e["dtype"].get<std::string>());
    CHECK(std::vector<uint64_t>(it->shape.begin(), it->shape.end()) == e["shape"].get<std::vector<uint64_t>>());
    CHECK_FALSE(it->zeros);
    REQUIRE(it->file_offset + it->bytes <= file.size());
    CHECK_MESSAGE(testing::sha256sum(dir, std::string_view(file).substr(it->file_offset, it->bytes)) ==
                      e["sha256"].get<std::string>(),
                  name);
  }
  for (size_t i = 1; i < m->tensors.size(); ++i)
    CHECK(m->tensors[i - 1].file_offset + m->tensors[i - 1].bytes <= m->tensors[i].file_offset);
}

TEST_CASE("format: tensorizer dtypes map numpy codes and torch names") {
  CHECK(tensorizer_dtype("<f4") == "F32");
  CHECK(tensorizer_dtype("|b1") == "BOOL");
  CHECK(tensorizer_dtype("<V2\0torch.bfloat16"s) == "BF16");
  CHECK(tensorizer_dtype("|V1\0torch.float8_e4m3fn"s) == "F8_E4M3");
  CHECK(tensorizer_dtype("|V1\0torch.float8_e5m2"s) == "F8_E5M2");
  CHECK(tensorizer_dtype("<V4\0torch.bfloat16"s) == "");  // width disagrees with the torch type
  CHECK(tensorizer_dtype(">f4") == "");                   // big-endian
  CHECK(tensorizer_dtype("<V2") == "");
}

TEST_CASE("format: tensorizer names become state-dict keys") {
  CHECK(tensorizer_state_dict_key(".mask") == "mask");
  CHECK(tensorizer_state_dict_key("layers.0.q.weight") == "layers.0.q.weight");
  CHECK(tensorizer_state_dict_key("\x1e[\"model\",\"layer\",0,\"weight\"]") == "model.layer.0.weight");
  CHECK(tensorizer_state_dict_key("\x1e[\"a\",-1]") == "");
  CHECK(tensorizer_state_dict_key("\x1e[\"a\",1.5]") == "");
  CHECK(tensorizer_state_dict_key("\x1e{\"a\":1}") == "");
  CHECK(tensorizer_state_dict_key("\x1e[]") == "");
  CHECK(tensorizer_state_dict_key(".") == "");
  CHECK(tensorizer_state_dict_key("") == "");
}

TEST_CASE("format: a hand-built tensorizer file reads back") {
  const std::string bytes = two_tensors().build();
  auto r = read(bytes);
  REQUIRE_MESSAGE(r.has_value(), r.error().message);
  REQUIRE(r->tensors.size() == 2);
  CHECK(r->tensors[0].name == "bias");
  CHECK(r->tensors[0].dtype == "F32");
  CHECK(bytes.substr(r->tensors[0].file_offset, r->tensors[0].bytes) == std::string("\1\2\3\4\5\6\7\10", 8));
  CHECK(r->tensors[1].name == "layer.w");
  CHECK(r->tensors[1].dtype == "BF16");
  CHECK(bytes.substr(r->tensors[1].file_offset, r->tensors[1].bytes) == "abcdef");
  CHECK(r->data_end == bytes.size() - 8);
}

TEST_CASE("format: tensorizer meta tensors are zeros from data version 4 only") {
  Builder b = two_tensors();
  b.specs.push_back({"meta", "<i4", {5}, "", 0});
  b.version = 4;
  auto r = read(b.build());
  REQUIRE_MESSAGE(r.has_value(), r.error().message);
  auto meta = std::find_if(r->tensors.begin(), r->tensors.end(), [](const TensorEntry& t) { return t.name == "meta"; });
  REQUIRE(meta != r->tensors.end());
  CHECK(meta->zeros);
  CHECK(meta->bytes == 20);
  b.version = 2;
  check_error(read(b.build()), Code::bad_data, "meta tensors need data version 4");
}

TEST_CASE("format: tensorizer files that break a rule are refused, naming the fault") {
  SUBCASE("bad magic") {
    std::string bytes = two_tensors().build();
    bytes[1] = 'X';
    check_error(read(bytes), Code::bad_data, "bad magic");
  }
  SUBCASE("unknown versions") {
    for (uint32_t v : {0u, 6u, 99u}) {
      Builder b = two_tensors();
      b.version = v;
      check_error(read(b.build()), Code::bad_data, fmt::format("data version {}", v));
    }
  }
  SUBCASE("version 3, or version 4 with flag bit 0: headers must hold crypt_info") {
    Builder b = two_tensors();  // headers without crypt_info (the encrypted files are in tensorizer_crypt_test)
    b.version = 3;
    check_error(read(b.build()), Code::bad_data, "crypt_info");
    b.version = 4;
    b.flags = 1;
    check_error(read(b.build()), Code::bad_data, "crypt_info");
  }
  SUBCASE("unknown feature flags") {
    Builder b = two_tensors();
    b.version = 4;
    b.flags = 2;  // versioned index entries: data version 5 only
    check_error(read(b.build()), Code::bad_data, "feature flags");
    b.version = 5;
    b.flags = 4;
    check_error(read(b.build()), Code::bad_data, "feature flags");
  }
  SUBCASE("a data length that disagrees with shape and dtype") {
    Builder b = two_tensors();
    b.specs[1].data = "abcdefgh";
    check_error(read(b.build()), Code::bad_data, "give 6 bytes but the index says 8");
  }
  SUBCASE("a tensor count the index cannot hold") {
    std::string bytes = two_tensors().build();
    bytes[57] = 3;  // the third entry is read from the zero padding: an empty name
    check_error(read(bytes), Code::bad_data, "not a valid tensor path");
    bytes[57] = 35;  // entries of 41 and 58 bytes, then 29 bytes each: entry 33 ends at 1027 > 1024
    check_error(read(bytes), Code::bad_data, "index entry 33 of 35 runs past");
    bytes[57] = 0x7f;
    check_error(read(bytes), Code::bad_data, "cannot fit");
  }
  SUBCASE("an index block longer than the file") {
    std::string bytes = two_tensors().build();
    const uint64_t huge = bytes.size();
    std::memcpy(bytes.data() + 65, &huge, 8);
    check_error(read(bytes), Code::no_source, "incomplete");
    const uint64_t absurd = uint64_t{1} << 62;
    std::memcpy(bytes.data() + 65, &absurd, 8);
    check_error(read(bytes), Code::bad_data, "index block length");
  }
  SUBCASE("a record header that disagrees with the index") {
    const std::string good = two_tensors().build();
    const size_t name_at = good.rfind("layer.w");  // the copy in the record header
    std::string bytes = good;
    bytes[name_at] = 'L';
    check_error(read(bytes), Code::bad_data, "disagree with the index");
    bytes = good;
    const size_t header_at = name_at - 13;  // u64 len, u16 module, u8 type, u16 name_len
    bytes[header_at] += 1;
    check_error(read(bytes), Code::bad_data, "its header says");
  }
  SUBCASE("a header offset inside the index, overlapping records, duplicate names") {
    const std::string good = two_tensors().build();
    // Index entry 1 starts after entry 0 (2+5+1+1+3+1+4+24 bytes); its offsets follow name, type, dtype, shape.
    const size_t entry1 = 73 + 41;
    const size_t offsets1 = entry1 + 2 + 7 + 1 + 1 + 18 + 1 + 4;
    std::string bytes = good;
    const uint64_t inside = 100;
    std::memcpy(bytes.data() + offsets1, &inside, 8);
    check_error(read(bytes), Code::bad_data, "inside the file header or index");
    // Point entry 1 at entry 0's record (same header and data offsets, same sizes): overlap.
    bytes = good;
    std::memcpy(bytes.data() + offsets1, good.data() + 73 + 2 + 5 + 1 + 1 + 3 + 1 + 4, 16);
    check_error(read(bytes), Code::bad_data, "overlaps");
    Builder b = two_tensors();
    b.specs[1] = b.specs[0];
    b.specs[1].name = "bias";  // ".bias" and "bias" are the same state-dict key
    check_error(read(b.build()), Code::bad_data, "'bias' appears twice");
  }
  SUBCASE("every truncation is incomplete or refused, never accepted") {
    const std::string good = two_tensors().build();
    const uint64_t data_end = read(good)->data_end;
    for (size_t n = 0; n < data_end; ++n) {
      auto r = read(good.substr(0, n));
      REQUIRE_FALSE(r.has_value());
      CHECK_MESSAGE(r.error().code == Code::no_source, n, ": ", r.error().message);
      CHECK(r.error().message.find("incomplete") != std::string::npos);
    }
  }
}

TEST_CASE("format: a directory of *.tensors files is a tensorizer model; format mismatches are refused") {
  testing::TempDir dir;
  testing::write_file(dir / "b.tensors", two_tensors().build());
  Builder other;
  other.specs.push_back({"c", "|u1", {1}, "z"});
  testing::write_file(dir / "a.tensors", other.build());
  auto m = index_local_model(dir.path(), format::Format::automatic);
  REQUIRE_MESSAGE(m.has_value(), m.error().message);
  CHECK(m->format == Format::tensorizer);
  REQUIRE(m->tensors.size() == 3);
  CHECK(m->tensors[0].name == "c");
  CHECK(m->tensors[0].file == 0);
  CHECK(m->tensors[2].file == 1);
  auto wrong = index_local_model(dir / "a.tensors", format::Format::safetensors);
  REQUIRE_FALSE(wrong.has_value());
  CHECK(wrong.error().code == Code::bad_data);
  auto dup = index_local_model(dir.path(), format::Format::tensorizer);
  REQUIRE(dup.has_value());
  testing::write_file(dir / "c.tensors", other.build());
  dup = index_local_model(dir.path(), format::Format::tensorizer);
  REQUIRE_FALSE(dup.has_value());
  CHECK(dup.error().message.find("'c' appears in more than one file") != std::string::npos);
}

}  // namespace tensorinit::format

namespace tensorinit::format {

TEST_CASE("format: tensorizer checksums of the golden file verify; a changed byte is named") {
  const std::string good = testing::read_file(kGolden);
  auto layout = read(good, "golden.tensors");
  REQUIRE_MESSAGE(layout.has_value(), layout.error().message);
  io::MemorySource source("golden.tensors", good);
  for (const auto& t : layout->tensors) {
    // Both hashes are there to check (so the SHA-256 path runs whenever the CRC-32 matches).
    tensorizer_detail::RecordHeader h;
    REQUIRE(tensorizer_detail::decode_record_header(good.substr(t.header_offset, t.file_offset - t.header_offset), h).empty());
    REQUIRE(h.hashes.size() == 2);
    CHECK(h.hashes[0].type == 0);
    CHECK(h.hashes[1].type == 1);
    auto ok = verify_tensorizer_checksums(source, t, std::as_bytes(std::span(good).subspan(t.file_offset, t.bytes)));
    CHECK_MESSAGE(ok.has_value(), ok.error().message);
  }
  const TensorEntry& t = layout->tensors.back();
  std::string data = good.substr(t.file_offset, t.bytes);
  data[t.bytes / 2] ^= 1;
  auto bad = verify_tensorizer_checksums(source, t, std::as_bytes(std::span(data)));
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.error().code == Code::bad_data);
  CHECK_MESSAGE(bad.error().message.find("tensor '" + t.name + "': CRC-32 mismatch") != std::string::npos,
                bad.error().message);
  // The header is covered too: change the module index (not cross-checked against the index).
  std::string changed = good;
  changed[t.header_offset + 8] ^= 1;
  io::MemorySource changed_source("golden.tensors", changed);
  auto bad_header = verify_tensorizer_checksums(changed_source, t, std::as_bytes(std::span(good).subspan(t.file_offset, t.bytes)));
  REQUIRE_FALSE(bad_header.has_value());
  CHECK(bad_header.error().message.find("mismatch") != std::string::npos);
  // Relabel the CRC-32 entry as an unknown hash type: it is skipped, and the SHA-256 (which covers
  // the changed type byte) must catch the change on its own.
  tensorizer_detail::RecordHeader h;
  REQUIRE(tensorizer_detail::decode_record_header(good.substr(t.header_offset, t.file_offset - t.header_offset), h).empty());
  std::string relabelled = good;
  relabelled[t.header_offset + h.hashes[0].value_offset - 2] = 7;
  io::MemorySource relabelled_source("golden.tensors", relabelled);
  auto sha_only = verify_tensorizer_checksums(relabelled_source, t, std::as_bytes(std::span(good).subspan(t.file_offset, t.bytes)));
  REQUIRE_FALSE(sha_only.has_value());
  CHECK_MESSAGE(sha_only.error().message.find("SHA-256 mismatch") != std::string::npos, sha_only.error().message);
}

}  // namespace tensorinit::format
