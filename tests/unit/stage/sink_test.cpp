// HostSink: many small tensors are written with their padding in few system calls, and the arena
// holds exactly the tensors' bytes with zeros between (issue 15 part 6: one pwrite per piece was
// 100,000 system calls for 100,000 4-byte tensors). The count is the kernel's (syscw of
// /proc/thread-self/io), not a clock.
#include "stage/sink.hpp"

#include <doctest/doctest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "util/fd.hpp"

namespace tensorinit::stage {
namespace {

uint64_t write_calls() {
  std::ifstream io("/proc/thread-self/io");
  std::string key;
  uint64_t value = 0;
  while (io >> key >> value)
    if (key == "syscw:") return value;
  return 0;
}

// `sizes` tensors back to back in one file chunk starting at 0, laid out at 256-byte alignment.
struct Model {
  format::ModelIndex index;
  ArenaLayout layout;
  ReadPlan plan;
  std::vector<std::byte> file;
  explicit Model(const std::vector<uint64_t>& sizes, uint64_t chunk_size = 0) {
    uint64_t at = 0;
    for (size_t i = 0; i < sizes.size(); ++i) {
      index.tensors.push_back({.name = std::to_string(i), .dtype = "U8", .shape = {sizes[i]}, .file_offset = at, .bytes = sizes[i]});
      at += sizes[i];
    }
    file.resize(at);
    for (size_t i = 0; i < file.size(); ++i) file[i] = static_cast<std::byte>(1 + i % 251);  // never 0
    layout = layout_arena(index);
    plan = plan_reads(index, layout, chunk_size ? chunk_size : (at + 4095) / 4096 * 4096);
  }
  // Runs the plan through a HostSink into a memfd arena; returns the arena's bytes.
  std::vector<std::byte> stage(uint64_t* calls = nullptr) const {
    UniqueFd fd(::memfd_create("sink-test", MFD_CLOEXEC));
    REQUIRE(fd);
    REQUIRE(::ftruncate(fd.get(), static_cast<off_t>(layout.bytes)) == 0);
    HostSink sink(fd.get(), "arena");
    const uint64_t before = write_calls();
    for (const auto& chunk : plan.chunks)
      REQUIRE(sink.consume(chunk, std::span(plan.pieces).subspan(chunk.first_piece, chunk.piece_count),
                           file.data() + chunk.offset, true));
    if (calls) *calls = write_calls() - before;
    std::vector<std::byte> out(layout.bytes);
    REQUIRE(::pread(fd.get(), out.data(), out.size(), 0) == static_cast<ssize_t>(out.size()));
    return out;
  }
  // The plan's chunks on `threads` threads at once, a third spliced from a memfd holding the file
  // (consume_from), a third from its mapping (consume_mapped), the rest handed over from memory
  // (consume); the writes taking turns or not (`serialised`).
  std::vector<std::byte> stage_concurrently(unsigned threads, bool serialised) const {
    UniqueFd source(::memfd_create("sink-test-source", MFD_CLOEXEC)), fd(::memfd_create("sink-test", MFD_CLOEXEC));
    REQUIRE((source && fd));
    REQUIRE(::pwrite(source.get(), file.data(), file.size(), 0) == static_cast<ssize_t>(file.size()));
    REQUIRE(::ftruncate(fd.get(), static_cast<off_t>(layout.bytes)) == 0);
    HostSink sink(fd.get(), "arena");
    REQUIRE(sink.takes_descriptor(source.get()));
    void* mapping = ::mmap(nullptr, file.size(), PROT_READ, MAP_SHARED, source.get(), 0);
    REQUIRE(mapping != MAP_FAILED);
    const auto* mapped = static_cast<const std::byte*>(mapping);
    std::atomic<size_t> next{0}, failures{0};
    {
      std::vector<std::jthread> workers;
      for (unsigned t = 0; t < threads; ++t)
        workers.emplace_back([&] {
          for (size_t i = next.fetch_add(1); i < plan.chunks.size(); i = next.fetch_add(1)) {
            const Chunk& chunk = plan.chunks[i];
            const auto pieces = std::span(plan.pieces).subspan(chunk.first_piece, chunk.piece_count);
            const auto ok = i % 3 == 1   ? sink.consume_from(chunk, pieces, source.get(), "model", serialised)
                            : i % 3 == 2 ? sink.consume_mapped(chunk, pieces, mapped + chunk.offset, "model", serialised)
                                         : sink.consume(chunk, pieces, file.data() + chunk.offset, serialised);
            if (!ok) failures.fetch_add(1);
          }
        });
    }
    ::munmap(mapping, file.size());
    CHECK(failures.load() == 0);
    std::vector<std::byte> out(layout.bytes);
    REQUIRE(::pread(fd.get(), out.data(), out.size(), 0) == static_cast<ssize_t>(out.size()));
    return out;
  }
  void check(const std::vector<std::byte>& arena) const {
    std::vector<std::byte> expected(layout.bytes);
    for (size_t i = 0; i < index.tensors.size(); ++i)
      std::copy_n(file.begin() + static_cast<ptrdiff_t>(index.tensors[i].file_offset), index.tensors[i].bytes,
                  expected.begin() + static_cast<ptrdiff_t>(layout.offsets[i]));
    CHECK(arena == expected);
  }
};

}  // namespace

TEST_CASE("HostSink: 10,000 4-byte tensors in a handful of writes, padding zero") {
  const Model model(std::vector<uint64_t>(10'000, 4));
  REQUIRE(model.plan.pieces.size() == 10'000);
  uint64_t calls = 0;
  const auto arena = model.stage(&calls);
  model.check(arena);
  // 10,000 slots of 256 bytes: 2.5 MiB, in writes of at most 1 MiB.
  CHECK(calls <= 8);
}

TEST_CASE("HostSink: 1,000 10,000-byte tensors in a few writes, from where they lie") {
  // ~10 KiB per tensor: a 1 GiB model of 100,000 (per-expert weights). Each piece and the padding
  // after it are two iovecs: 512 pieces a write. Copied into a 1 MiB gather buffer (before), they
  // took 10 writes and a memset and memcpy of every byte.
  const Model model(std::vector<uint64_t>(1'000, 10'000));
  uint64_t calls = 0;
  const auto arena = model.stage(&calls);
  model.check(arena);
  CHECK(calls <= 4);
}

// The file's pages as a shared mapping (the pipeline's path for chunks of many small tensors in
// splice mode): written by the kernel only, so a file cut short while staged is an error, not a
// SIGBUS that would kill the process with the arena in place.
TEST_CASE("HostSink: from a file mapping byte-exact; a file cut short is Code::bad_data, not SIGBUS") {
  std::vector<uint64_t> sizes;
  for (uint64_t i = 0; i < 2000; ++i) sizes.push_back(i % 9 == 0 ? 5000 + i : 1 + i % 700);
  const Model model(sizes);
  REQUIRE(model.plan.chunks.size() == 1);
  const Chunk& chunk = model.plan.chunks[0];
  const auto pieces = std::span(model.plan.pieces).subspan(chunk.first_piece, chunk.piece_count);
  UniqueFd source(::memfd_create("sink-test-source", MFD_CLOEXEC));
  REQUIRE(source);
  REQUIRE(::pwrite(source.get(), model.file.data(), model.file.size(), 0) == static_cast<ssize_t>(model.file.size()));
  void* mapped = ::mmap(nullptr, model.file.size(), PROT_READ, MAP_SHARED, source.get(), 0);
  REQUIRE(mapped != MAP_FAILED);
  const auto* bytes = static_cast<const std::byte*>(mapped);
  for (bool cut : {false, true}) {
    if (cut) REQUIRE(::ftruncate(source.get(), 4096) == 0);
    UniqueFd fd(::memfd_create("sink-test", MFD_CLOEXEC));
    REQUIRE(::ftruncate(fd.get(), static_cast<off_t>(model.layout.bytes)) == 0);
    HostSink sink(fd.get(), "arena");
    auto ok = sink.consume_mapped(chunk, pieces, bytes + chunk.offset, "model.safetensors", true);
    if (cut) {
      REQUIRE_FALSE(ok.has_value());
      CHECK(ok.error().code == Code::bad_data);
      CHECK(ok.error().message == "model.safetensors: changed while it was read (a page of its mapping is gone)");
      continue;
    }
    REQUIRE(ok.has_value());
    std::vector<std::byte> out(model.layout.bytes);
    REQUIRE(::pread(fd.get(), out.data(), out.size(), 0) == static_cast<ssize_t>(out.size()));
    model.check(out);
  }
  ::munmap(mapped, model.file.size());
}

TEST_CASE("HostSink: small, empty and large pieces mixed, byte-exact") {
  std::vector<uint64_t> sizes;
  for (uint64_t i = 0; i < 300; ++i) sizes.push_back(i % 7 == 0 ? 0 : i % 11 == 0 ? (64 << 10) + i : i * 37 % 500);
  sizes.push_back(3 << 20);  // larger than a gathered write
  for (uint64_t i = 0; i < 50; ++i) sizes.push_back(255 + i % 3);
  for (uint64_t i = 0; i < 3000; ++i) sizes.push_back(i % 5 == 0 ? 4095 + i % 3 : i % 3 == 0 ? 512 : 1 + i % 300);
  const Model model(sizes);
  model.check(model.stage());
}

// The arena's writes take turns on HostSink's mutex (stage/sink.hpp): readers on many threads,
// spliced and buffered chunks mixed, still give every byte in place and none lost.
TEST_CASE("HostSink: 16 threads, spliced and copied chunks mixed, byte-exact") {
  std::vector<uint64_t> sizes;
  for (uint64_t i = 0; i < 200; ++i) sizes.push_back(i % 5 == 0 ? (300 << 10) + i : i * 4099 % (80 << 10));
  const Model model(sizes, 256 << 10);
  REQUIRE(model.plan.chunks.size() > 32);
  model.check(model.stage_concurrently(16, true));
}

// Writes that do not take turns (ReadSetting::serialised false, the controller's unlocked twin):
// tmpfs's inode lock alone orders them, and every piece still lands byte-exact, padding zero.
TEST_CASE("HostSink: unserialised writes, 16 threads, spliced, mapped and copied chunks, byte-exact") {
  std::vector<uint64_t> sizes;
  for (uint64_t i = 0; i < 300; ++i)
    sizes.push_back(i % 5 == 0 ? (300 << 10) + i : i % 7 == 0 ? 1 + i % 300 : i * 4099 % (80 << 10));
  const Model model(sizes, 256 << 10);
  REQUIRE(model.plan.chunks.size() > 32);
  model.check(model.stage_concurrently(16, false));
  model.check(model.stage_concurrently(2, false));
}

}  // namespace tensorinit::stage
