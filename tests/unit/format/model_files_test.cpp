// index_local_model on real files in a temp directory: a single file, a directory without an index,
// and sharded directories with model.safetensors.index.json, good and broken. The codes are the
// planner's decisions: no_source = missing/incomplete (skip the candidate), bad_data = malformed.
#include <doctest/doctest.h>

#include <fmt/format.h>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "format/model_files.hpp"
#include "format/safetensors_writer.hpp"
#include "format/shard_index.hpp"
#include "io/file_source.hpp"
#include "test_files.hpp"

namespace {

using namespace tensorinit;
using namespace tensorinit::format;
using tensorinit::testing::TempDir;
using tensorinit::testing::write_file;

constexpr auto kAuto = format::Format::automatic;

// A valid safetensors file holding `names`, each an F32 [n] tensor (n = 1, 2, ...), filled with `fill`.
std::string model_file(const std::vector<std::string>& names, char fill = '\x11') {
  std::vector<TensorSpec> specs;
  uint64_t data = 0;
  for (size_t i = 0; i < names.size(); ++i) {
    specs.push_back({names[i], "F32", {i + 1}, 4 * (i + 1)});
    data += 4 * (i + 1);
  }
  return safetensors_head(specs, {}) + std::string(data, fill);
}

// Two shards: s1 {a (4 B), b (8 B)}, s2 {c (4 B)}; the index says so, total 16 bytes.
struct Sharded {
  TempDir dir;
  std::string s1 = "model-00001-of-00002.safetensors";
  std::string s2 = "model-00002-of-00002.safetensors";
  Sharded() {
    write_file(dir / s1, model_file({"a", "b"}));
    write_file(dir / s2, model_file({"c"}));
  }
  void write_index(std::string_view weight_map, uint64_t total = 16) const {
    write_file(dir / "model.safetensors.index.json",
               fmt::format(R"({{"metadata":{{"total_size":{}}},"weight_map":{{{}}}}})", total, weight_map));
  }
  std::string good_map() const { return fmt::format(R"("a":"{0}","b":"{0}","c":"{1}")", s1, s2); }
};

void check_error(const Result<ModelIndex>& r, Code code, std::string_view names, std::string_view what) {
  REQUIRE_FALSE(r.has_value());
  INFO("message: " << r.error().message);
  CHECK(r.error().code == code);
  CHECK(r.error().message.find(names) != std::string::npos);
  CHECK(r.error().message.find(what) != std::string::npos);
}

}  // namespace

TEST_CASE("format: a single file indexes with its directory as the model dir") {
  const std::string golden = TENSORINIT_FIXTURES "/tiny-f16.safetensors";
  auto m = index_local_model(golden, kAuto);
  REQUIRE_MESSAGE(m.has_value(), m.error().message);
  CHECK(m->dir == TENSORINIT_FIXTURES);
  REQUIRE(m->files.size() == 1);
  CHECK(m->files[0].size == std::filesystem::file_size(golden));
  CHECK(m->tensors.size() == 10);
  CHECK(m->format == Format::safetensors);
}

TEST_CASE("format: a missing path is no_source") {
  TempDir dir;
  check_error(index_local_model(dir / "nope.safetensors", kAuto), Code::no_source, dir / "nope.safetensors", "missing");
}

TEST_CASE("format: a directory without an index takes every *.safetensors, sorted") {
  TempDir dir;
  write_file(dir / "b.safetensors", model_file({"y"}));
  write_file(dir / "a.safetensors", model_file({"x", "w"}));
  write_file(dir / "notes.txt", "not weights");
  write_file(dir / "c.safetensors.part", "partial download");
  auto m = index_local_model(dir.path(), kAuto);
  REQUIRE_MESSAGE(m.has_value(), m.error().message);
  CHECK(m->dir == dir.path());
  REQUIRE(m->files.size() == 2);
  CHECK(m->files[0].path == dir / "a.safetensors");
  CHECK(m->files[1].path == dir / "b.safetensors");
  REQUIRE(m->tensors.size() == 3);
  CHECK(m->tensors[0].name == "x");
  CHECK(m->tensors[0].file == 0);
  CHECK(m->tensors[2].name == "y");
  CHECK(m->tensors[2].file == 1);
  CHECK(m->tensor_bytes() == 4 + 8 + 4);
}

TEST_CASE("format: a directory without an index rejects a tensor held by two files") {
  TempDir dir;
  write_file(dir / "a.safetensors", model_file({"x"}));
  write_file(dir / "b.safetensors", model_file({"x"}));
  check_error(index_local_model(dir.path(), kAuto), Code::bad_data, dir.path(), "tensor 'x' appears in more than one file");
}

TEST_CASE("format: a directory with no weight files is missing, not malformed") {
  TempDir dir;
  check_error(index_local_model(dir.path(), kAuto), Code::no_source, dir.path(), "holds no *.safetensors");
  write_file(dir / "README.md", "hello");
  check_error(index_local_model(dir.path(), kAuto), Code::no_source, dir.path(), "holds no *.safetensors");
}

TEST_CASE("format: a malformed or truncated file in a directory fails the directory") {
  TempDir dir;
  write_file(dir / "a.safetensors", model_file({"x"}));
  std::string broken = model_file({"y", "z"});
  write_file(dir / "b.safetensors", broken.substr(0, broken.size() - 1));
  check_error(index_local_model(dir.path(), kAuto), Code::no_source, dir / "b.safetensors", "incomplete");
  write_file(dir / "b.safetensors", broken + "x");
  check_error(index_local_model(dir.path(), kAuto), Code::bad_data, dir / "b.safetensors", "trailing");
}

TEST_CASE("format: a sharded directory with an index") {
  Sharded m;
  m.write_index(m.good_map());
  auto index = index_local_model(m.dir.path(), kAuto);
  REQUIRE_MESSAGE(index.has_value(), index.error().message);
  REQUIRE(index->files.size() == 2);
  CHECK(index->files[0].path == m.dir / m.s1);
  REQUIRE(index->tensors.size() == 3);
  CHECK(index->tensors[2].name == "c");
  CHECK(index->tensors[2].file == 1);
  CHECK(index->tensor_bytes() == 16);
}

TEST_CASE("format: sharded: a missing or truncated shard is no_source (incomplete)") {
  Sharded m;
  m.write_index(m.good_map());
  const std::string shard = testing::read_file(m.dir / m.s2);
  write_file(m.dir / m.s2, shard.substr(0, shard.size() - 2));
  check_error(index_local_model(m.dir.path(), kAuto), Code::no_source, m.dir / m.s2, "incomplete");
  std::filesystem::remove(m.dir / m.s2);
  check_error(index_local_model(m.dir.path(), kAuto), Code::no_source, m.dir / m.s2, "incomplete");
}

TEST_CASE("format: sharded: index and shards that disagree are bad_data") {
  Sharded m;
  const std::string index = m.dir / "model.safetensors.index.json";
  SUBCASE("total_size wrong") {
    m.write_index(m.good_map(), 17);
    check_error(index_local_model(m.dir.path(), kAuto), Code::bad_data, index, "total_size is 17 but the shards hold 16");
  }
  SUBCASE("a tensor not in the weight_map") {
    m.write_index(fmt::format(R"("a":"{0}","b":"{0}")", m.s1) + fmt::format(R"(,"zz":"{}")", m.s2));
    check_error(index_local_model(m.dir.path(), kAuto), Code::bad_data, index, "tensor 'c' in " + m.s2 + " is not in the weight_map");
  }
  SUBCASE("a tensor in two shards") {
    write_file(m.dir / m.s2, model_file({"c", "a"}));
    m.write_index(m.good_map(), 16 + 8);
    check_error(index_local_model(m.dir.path(), kAuto), Code::bad_data, index, "tensor 'a' appears in more than one shard");
  }
  SUBCASE("the weight_map names the wrong shard") {
    m.write_index(fmt::format(R"("a":"{0}","b":"{1}","c":"{1}")", m.s1, m.s2));
    check_error(index_local_model(m.dir.path(), kAuto), Code::bad_data, index, "tensor 'b' is in " + m.s1);
  }
  SUBCASE("the weight_map lists a tensor no shard holds") {
    m.write_index(m.good_map() + fmt::format(R"(,"ghost":"{}")", m.s2));
    check_error(index_local_model(m.dir.path(), kAuto), Code::bad_data, index, "tensor 'ghost' is listed");
  }
  SUBCASE("the index is not JSON") {
    write_file(index, "{\"weight_map\": ");
    check_error(index_local_model(m.dir.path(), kAuto), Code::bad_data, index, "not valid JSON");
  }
  SUBCASE("the index has no weight_map") {
    write_file(index, R"({"metadata":{}})");
    check_error(index_local_model(m.dir.path(), kAuto), Code::bad_data, index, "no \"weight_map\"");
  }
  SUBCASE("the index is a directory") {
    std::filesystem::create_directory(index);
    check_error(index_local_model(m.dir.path(), kAuto), Code::bad_data, index, "not a regular file");
  }
  SUBCASE("the weight_map is empty") {
    m.write_index("");
    check_error(index_local_model(m.dir.path(), kAuto), Code::bad_data, index, "weight_map is empty");
  }
  SUBCASE("a shard name that is a path") {
    for (const char* name : {"../escape.safetensors", "sub/x.safetensors", "..", ".", ""}) {
      INFO("shard name: " << std::string(name));
      m.write_index(fmt::format(R"("a":"{0}","b":"{0}","c":"{1}")", m.s1, name));
      check_error(index_local_model(m.dir.path(), kAuto), Code::bad_data, index, "is not a file name");
    }
  }
  SUBCASE("a malformed shard names the shard") {
    write_file(m.dir / m.s1, testing::raw_safetensors(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                                                      R"("a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                                                      std::string(8, '\0')));
    m.write_index(m.good_map());
    check_error(index_local_model(m.dir.path(), kAuto), Code::bad_data, m.dir / m.s1, "duplicate key 'a'");
  }
}

// A *.safetensors that cannot be examined used to throw filesystem_error out of the plan (exit 70,
// no report, no next candidate): now the candidate is unusable, naming the file and why.
TEST_CASE("format: a symlink loop or dangling link named *.safetensors makes the directory unusable") {
  TempDir dir;
  write_file(dir / "a.safetensors", model_file({"x"}));
  SUBCASE("a loop") {
    std::filesystem::create_symlink(dir / "loop.safetensors", dir / "loop.safetensors");
    check_error(index_local_model(dir.path(), kAuto), Code::no_source, dir / "loop.safetensors", "unreadable");
  }
  SUBCASE("a dangling link: the model would be loaded without that file") {
    std::filesystem::create_symlink(dir / "gone.safetensors", dir / "b.safetensors");
    check_error(index_local_model(dir.path(), kAuto), Code::no_source, dir / "b.safetensors", "unreadable");
  }
  SUBCASE("a loop as the shard index") {
    std::filesystem::create_symlink(dir / kShardIndexName, dir / kShardIndexName);
    check_error(index_local_model(dir.path(), kAuto), Code::no_source, dir / kShardIndexName, "unreadable");
  }
  SUBCASE("a loop as the path itself") {
    std::filesystem::create_symlink(dir / "self", dir / "self");
    check_error(index_local_model(dir / "self", kAuto), Code::no_source, dir / "self", "unreadable");
  }
  SUBCASE("a directory of that name is not a weight file") {
    std::filesystem::create_directory(dir / "d.safetensors");
    auto m = index_local_model(dir.path(), kAuto);
    REQUIRE_MESSAGE(m.has_value(), m.error().message);
    CHECK(m->files.size() == 1);
  }
}

// Staging reads the descriptor the header came from: a same-size file renamed over the path after
// indexing (a flipped `current` symlink) is not what the index's source reads.
TEST_CASE("format: the index keeps each file's descriptor, opened when its header was read") {
  TempDir dir;
  const std::string old_bytes = model_file({"x", "y"}, '\x11');
  std::filesystem::create_directory(dir / "v1");
  std::filesystem::create_directory(dir / "v2");
  write_file(dir / "v1/a.safetensors", old_bytes);
  std::filesystem::create_directory_symlink("v1", dir / "current");
  auto m = index_local_model(dir / "current", kAuto);
  REQUIRE_MESSAGE(m.has_value(), m.error().message);
  REQUIRE(m->files.size() == 1);
  REQUIRE(m->files[0].source);
  write_file(dir / "v2/a.safetensors", model_file({"x", "y"}, '\x22'));
  std::filesystem::create_directory_symlink("v2", dir / "next");
  std::filesystem::rename(dir / "next", dir / "current");
  std::string got(old_bytes.size(), '\0');
  REQUIRE(m->files[0].source->read_at(0, std::as_writable_bytes(std::span(got))).has_value());
  CHECK(got == old_bytes);
  CHECK(m->files[0].source->check_unchanged().has_value());
  CHECK_FALSE(m->files[0].source->check_path().has_value());
}
