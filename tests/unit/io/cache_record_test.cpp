// The cache record: written atomically, read back equal; absent is no_source, anything that is
// not a record (garbage, a missing field, a huge file) is bad_data; removal untrusts the file.
#include "io/cache_record.hpp"

#include <doctest/doctest.h>
#include <fstream>

#include "../format/test_files.hpp"

using namespace tensorinit;
using testing::TempDir;

TEST_CASE("io: a cache record round-trips and is removed") {
  TempDir dir;
  const std::string file = dir / "a.safetensors";
  CHECK(io::cache_record_path(file) == file + ".tensorinit.json");
  CHECK(io::read_cache_record(file).error().code == Code::no_source);
  const io::CacheRecord record{"https://h/m/a.safetensors", "\"e\\\"tag\"", 123456789012ull};
  REQUIRE(io::write_cache_record(file, record));
  auto read = io::read_cache_record(file);
  REQUIRE(read);
  CHECK(*read == record);
  io::remove_cache_record(file);
  CHECK(io::read_cache_record(file).error().code == Code::no_source);
  io::remove_cache_record(file);  // none: nothing happens
}

TEST_CASE("io: what is not a cache record is bad data") {
  TempDir dir;
  const std::string file = dir / "a.safetensors";
  for (std::string text : {std::string("not json"), std::string(R"({"url":"u","size":3})"),
                           std::string(R"({"url":"u","etag":"e","size":"3"})"), std::string(R"([1,2])"),
                           R"({"url":")" + std::string(40'000, 'x') + R"(","etag":"","size":1})"}) {
    std::ofstream(io::cache_record_path(file), std::ios::trunc) << text;
    auto read = io::read_cache_record(file);
    REQUIRE_FALSE(read);
    CHECK(read.error().code == Code::bad_data);
  }
}
