// FileSource on real files: open errors map to the planner's codes; buffered and O_DIRECT reads
// return the same bytes (O_DIRECT where the filesystem allows it, the buffered fallback elsewhere);
// a read past the end is Code::bad_data. Also the MemorySource fake keeps the same contract.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "../format/test_files.hpp"
#include "../lease_holder.hpp"
#include "io/file_source.hpp"
#include "io/memory_source.hpp"

namespace {

using namespace tensorinit;
using tensorinit::testing::TempDir;

// Deterministic, position-dependent bytes, so a read from the wrong offset cannot pass.
std::string pattern(size_t n) {
  std::string s(n, '\0');
  uint32_t x = 2463534242u;
  for (auto& c : s) {
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    c = static_cast<char>(x);
  }
  return s;
}

struct AlignedFree {
  void operator()(std::byte* p) const { std::free(p); }
};
std::unique_ptr<std::byte, AlignedFree> aligned_buffer(size_t n) {
  return std::unique_ptr<std::byte, AlignedFree>(static_cast<std::byte*>(std::aligned_alloc(io::kDirectAlign, n)));
}

std::string as_string(const std::byte* p, size_t n) { return std::string(reinterpret_cast<const char*>(p), n); }

// Rewrites `path` in place (same inode) and dates its mtime back to a fixed instant, so the change
// is visible whatever the filesystem's timestamp granularity.
void rewrite_in_place(const std::string& path, const std::string& bytes) {
  testing::write_file(path, bytes);
  const timespec times[2] = {{0, UTIME_OMIT}, {1'000'000, 0}};
  REQUIRE(::utimensat(AT_FDCWD, path.c_str(), times, 0) == 0);
}

std::string read_all(const io::FileSource& source) {
  std::string out(source.size(), '\0');
  REQUIRE(source.read_at(0, std::as_writable_bytes(std::span(out))).has_value());
  return out;
}

}  // namespace

TEST_CASE("io: FileSource::open maps errors to codes and names the path") {
  TempDir dir;
  auto missing = io::FileSource::open(dir / "missing");
  REQUIRE_FALSE(missing.has_value());
  CHECK(missing.error().code == Code::no_source);
  CHECK(missing.error().message.find(dir / "missing") != std::string::npos);

  auto directory = io::FileSource::open(dir.path());
  REQUIRE_FALSE(directory.has_value());
  CHECK(directory.error().code == Code::no_source);
  CHECK(directory.error().message.find("not a regular file") != std::string::npos);

  // A FIFO must be refused, not block the open waiting for a writer.
  REQUIRE(::mkfifo((dir / "fifo").c_str(), 0600) == 0);
  auto fifo = io::FileSource::open(dir / "fifo");
  REQUIRE_FALSE(fifo.has_value());
  CHECK(fifo.error().code == Code::no_source);
  CHECK(fifo.error().message.find("not a regular file") != std::string::npos);

  auto through_file = io::FileSource::open(dir / "missing/x");
  REQUIRE_FALSE(through_file.has_value());
  CHECK(through_file.error().code == Code::no_source);
}

// A model file under a write lease (Samba's kernel oplocks, knfsd's delegations): the open waits
// for the holder to release it, as a plain open does. With O_NONBLOCK alone it failed EWOULDBLOCK
// and the start with it (66, "Resource temporarily unavailable"; docs/notes/attack10.md).
TEST_CASE("io: FileSource::open of a file under a lease waits for its holder to release it") {
  TempDir dir;
  const std::string path = dir / "model.safetensors";
  tensorinit::testing::write_file(path, pattern(8192));
  tensorinit::testing::LeaseHolder holder(path);
  if (!holder.held()) {
    MESSAGE("no write lease could be taken here (fs.leases-enable 0?): nothing to check");
    return;
  }
  auto source = io::FileSource::open(path);
  REQUIRE(source.has_value());
  std::string out(8192, '\0');
  REQUIRE((*source)->read_at(0, std::as_writable_bytes(std::span(out))).has_value());
  CHECK(out == pattern(8192));
  CHECK(holder.released());
}

TEST_CASE("io: buffered read_at returns the file's bytes; past the end is bad_data") {
  TempDir dir;
  const std::string data = pattern(10'000);
  testing::write_file(dir / "f", data);
  auto source = io::FileSource::open(dir / "f");
  REQUIRE(source.has_value());
  CHECK((*source)->size() == data.size());
  CHECK((*source)->name() == dir / "f");

  std::string out(777, '\0');
  REQUIRE((*source)->read_at(1234, std::as_writable_bytes(std::span(out))).has_value());
  CHECK(out == data.substr(1234, 777));
  CHECK((*source)->read_at(0, {}).has_value());

  auto past = (*source)->read_at(data.size() - 10, std::as_writable_bytes(std::span(out)));
  REQUIRE_FALSE(past.has_value());
  CHECK(past.error().code == Code::bad_data);
  CHECK(past.error().message.find(dir / "f") != std::string::npos);
}

TEST_CASE("io: direct reads (or their buffered fallback) return the same bytes, tails included") {
  TempDir dir;
  const size_t size = 3 * io::kDirectAlign + 100;  // not a whole number of blocks
  const std::string data = pattern(size);
  testing::write_file(dir / "f", data);
  auto source = io::FileSource::open(dir / "f");
  REQUIRE(source.has_value());
  const bool direct = (*source)->enable_direct();
  CHECK((*source)->direct() == direct);
  CHECK((*source)->enable_direct() == direct);  // idempotent
  MESSAGE("O_DIRECT on the test directory: " << std::string(direct ? "yes" : "refused, buffered fallback"));

  const size_t room = 4 * io::kDirectAlign;
  auto buffer = aligned_buffer(room);
  std::span<std::byte> span(buffer.get(), room);

  SUBCASE("aligned read_at") {
    REQUIRE((*source)->read_at(io::kDirectAlign, span.first(2 * io::kDirectAlign)).has_value());
    CHECK(as_string(buffer.get(), 2 * io::kDirectAlign) == data.substr(io::kDirectAlign, 2 * io::kDirectAlign));
  }
  SUBCASE("unaligned read_at goes buffered") {
    REQUIRE((*source)->read_at(5, span.subspan(3, 5000)).has_value());
    CHECK(as_string(buffer.get() + 3, 5000) == data.substr(5, 5000));
  }
  SUBCASE("read_at of the tail, length not a block multiple") {
    REQUIRE((*source)->read_at(io::kDirectAlign, span.first(size - io::kDirectAlign)).has_value());
    CHECK(as_string(buffer.get(), size - io::kDirectAlign) == data.substr(io::kDirectAlign));
  }
  SUBCASE("read_at of the whole file from 0") {
    REQUIRE((*source)->read_at(0, span.first(size)).has_value());
    CHECK(as_string(buffer.get(), size) == data);
  }
  SUBCASE("aligned read_at past the end is bad_data") {
    auto r = (*source)->read_at(3 * io::kDirectAlign, span.first(io::kDirectAlign));
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == Code::bad_data);
  }
}

TEST_CASE("io: resident_fraction is a fraction, and 1 for an empty file") {
  TempDir dir;
  testing::write_file(dir / "f", pattern(64 * 1024));
  testing::write_file(dir / "empty", "");
  auto source = io::FileSource::open(dir / "f");
  REQUIRE(source.has_value());
  std::string all(64 * 1024, '\0');
  REQUIRE((*source)->read_at(0, std::as_writable_bytes(std::span(all))).has_value());
  const double resident = (*source)->resident_fraction();
  CHECK(resident > 0.0);  // just written and read: in the page cache
  CHECK(resident <= 1.0);
  auto empty = io::FileSource::open(dir / "empty");
  REQUIRE(empty.has_value());
  CHECK((*empty)->resident_fraction() == 1.0);
}

TEST_CASE("io: MemorySource (the readers' fake) ends like a file") {
  const std::string data = "0123456789";
  io::MemorySource source("mem", data);
  std::string out(4, '\0');
  REQUIRE(source.read_at(6, std::as_writable_bytes(std::span(out))).has_value());
  CHECK(out == "6789");
  CHECK(source.read_at(10, {}).has_value());
  CHECK(source.read_at(7, std::as_writable_bytes(std::span(out))).error().code == Code::bad_data);
  CHECK(source.read_at(UINT64_MAX, std::as_writable_bytes(std::span(out))).error().code == Code::bad_data);
}

TEST_CASE("io: check_unchanged finds a file rewritten in place, same size or not") {
  TempDir dir;
  const std::string data = pattern(8192);
  testing::write_file(dir / "f", data);
  auto source = io::FileSource::open(dir / "f");
  REQUIRE(source.has_value());
  CHECK((*source)->check_unchanged().has_value());
  CHECK((*source)->check_path().has_value());

  SUBCASE("same size, other bytes") {
    rewrite_in_place(dir / "f", pattern(8192).replace(100, 5, "xxxxx"));
    auto r = (*source)->check_unchanged();
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == Code::bad_data);
    CHECK(r.error().message.find(dir / "f") != std::string::npos);
    CHECK(r.error().message.find("modified") != std::string::npos);
  }
  SUBCASE("truncated") {
    REQUIRE(::truncate((dir / "f").c_str(), 100) == 0);
    auto r = (*source)->check_unchanged();
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().message.find("size 8192 -> 100 bytes") != std::string::npos);
  }
}

TEST_CASE("io: a file swapped in under the path: reads keep the opened file, check_path says so") {
  TempDir dir;
  const std::string old_bytes = pattern(3 * io::kDirectAlign);
  std::string new_bytes = old_bytes;
  new_bytes[0] = static_cast<char>(~new_bytes[0]);
  // The flipped `current` symlink: same size, another inode; the opened file itself untouched (a
  // rename over the path would unlink it and move its ctime: refused, see check_unchanged).
  std::filesystem::create_directory(dir / "a");
  std::filesystem::create_directory(dir / "b");
  testing::write_file(dir / "a/f", old_bytes);
  std::filesystem::create_directory_symlink("a", dir / "current");
  auto source = io::FileSource::open(dir / "current/f");
  REQUIRE(source.has_value());
  testing::write_file(dir / "b/f", new_bytes);
  std::filesystem::create_directory_symlink("b", dir / "next");
  std::filesystem::rename(dir / "next", dir / "current");

  CHECK((*source)->check_unchanged().has_value());  // the opened file itself did not change
  auto path = (*source)->check_path();
  REQUIRE_FALSE(path.has_value());
  CHECK(path.error().code == Code::bad_data);
  CHECK(path.error().message.find("another file") != std::string::npos);
  // O_DIRECT, enabled after the swap, still reads the opened file (or is refused).
  (*source)->enable_direct();
  auto buffer = aligned_buffer(old_bytes.size());
  REQUIRE((*source)->read_at(0, std::span(buffer.get(), old_bytes.size())).has_value());
  CHECK(as_string(buffer.get(), old_bytes.size()) == old_bytes);
  CHECK(read_all(**source) == old_bytes);

  REQUIRE(std::remove((dir / "current/f").c_str()) == 0);
  CHECK_FALSE((*source)->check_path().has_value());
}

TEST_CASE("io: map_populated gives the bytes at any offset; a refused mapping names the file and why") {
  TempDir dir;
  const std::string content = pattern(3 * 4096 + 17);
  const std::string path = dir / "mapped.bin";
  testing::write_file(path, content);
  auto src = io::FileSource::open(path);
  REQUIRE(src);
  for (uint64_t offset : {0ull, 1ull, 4095ull, 4096ull, 5000ull}) {
    auto m = (*src)->map_populated(offset, content.size() - offset);
    REQUIRE(m);
    CHECK(std::string(reinterpret_cast<const char*>(m->at), content.size() - offset) == content.substr(offset));
  }
  // More than the address space: mmap fails (ENOMEM), and the reason is kept for the fallback's line.
  auto refused = (*src)->map_populated(0, 1ull << 60);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().message.find(path) != std::string::npos);
  CHECK(refused.error().message.find(std::strerror(ENOMEM)) != std::string::npos);
}
