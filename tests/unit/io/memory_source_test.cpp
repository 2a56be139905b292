// MemorySource: bytes in memory as a ByteSource, bounds-checked like a file (a read past the end,
// or whose offset + length wraps, is Code::bad_data and copies nothing), borrowed or owned.
#include "io/memory_source.hpp"

#include <doctest/doctest.h>

#include <string>
#include <thread>
#include <vector>

using namespace tensorinit;

namespace {
std::span<std::byte> bytes_of(std::string& s) { return std::as_writable_bytes(std::span(s)); }
}  // namespace

TEST_CASE("io: MemorySource reads inside its bytes and refuses everything past them") {
  const std::string data = "0123456789";
  io::MemorySource source("mem", data);
  CHECK(source.size() == 10);
  CHECK(source.name() == "mem");
  CHECK(source.alignment() == 1);
  std::string out(4, '\0');
  REQUIRE(source.read_at(6, bytes_of(out)).has_value());
  CHECK(out == "6789");
  CHECK(source.read_at(10, {}).has_value());  // an empty read at the very end
  out = "abcd";
  for (uint64_t offset : {uint64_t{7}, uint64_t{11}, UINT64_MAX, UINT64_MAX - 2}) {
    auto r = source.read_at(offset, bytes_of(out));
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == Code::bad_data);
    CHECK(r.error().message.find("mem") != std::string::npos);
    CHECK(out == "abcd");  // nothing copied
  }
  CHECK(source.read_at(11, {}).error().code == Code::bad_data);
}

TEST_CASE("io: an owning MemorySource keeps its bytes after the caller's copy is gone") {
  std::unique_ptr<io::MemorySource> source;
  {
    std::string text(100'000, 'x');
    text[99'999] = 'y';
    source = io::MemorySource::owning("index.json", std::move(text), 4096);
  }
  CHECK(source->alignment() == 4096);
  std::string out(2, '\0');
  REQUIRE(source->read_at(99'998, bytes_of(out)).has_value());
  CHECK(out == "xy");
  CHECK(source->read_at(99'999, bytes_of(out)).error().code == Code::bad_data);
}

TEST_CASE("io: MemorySource serves concurrent readers") {
  std::string data(1 << 20, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 131 >> 3);
  io::MemorySource source("mem", data);
  std::vector<int> bad(4, 0);
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < 4; ++t)
      threads.emplace_back([&, t] {
        std::string out(4093, '\0');
        for (uint64_t at = static_cast<uint64_t>(t) * 7; at + out.size() <= data.size(); at += 65'537)
          if (!source.read_at(at, bytes_of(out)) || out != data.substr(at, out.size())) ++bad[t];
      });
  }
  CHECK(bad == std::vector<int>(4, 0));
}
