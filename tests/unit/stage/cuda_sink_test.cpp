// The real cuda sink and pipeline against the strict runtime double: byte-exact device arenas on
// every device, pinned buffers allocated once and recycled only after their copies completed,
// copies spread over streams, no synchronous copy, and the double saw no misuse.
#include "stage/cuda_sink.hpp"

#include <doctest/doctest.h>

#include <cstring>
#include <optional>
#include <stop_token>

#include "cuda_double.hpp"
#include "fake_source.hpp"
#include "stage/pipeline.hpp"

namespace tensorinit::stage {
namespace {

using testing::FakeSource;

struct Recording {
  explicit Recording(unsigned delay_us) {
    cuda_double::configure({.devices = 2, .copy_delay_us = delay_us, .abort_on_violation = false});
    cuda_double::reset();
  }
  ~Recording() {
    cuda_double::configure({});
    cuda_double::reset();
  }
};

format::ModelIndex index_of(const std::vector<const FakeSource*>& files) {
  return testing::odd_tensors_index(files, 24, {1, 7, 4096, 100000, 3, 0, 65537, 300001});
}

// Copies every arena back through the double (which fails any read of an unfinished arena).
void check_arenas(const std::vector<CudaArena>& arenas, const format::ModelIndex& index, const ArenaLayout& layout,
                  const std::vector<const FakeSource*>& files) {
  for (const CudaArena& arena : arenas) {
    std::vector<std::byte> back(arena.size());
    REQUIRE(cudart::cudaMemcpy(back.data(), arena.data(), arena.size(), cudart::kDeviceToHost) == cudart::kSuccess);
    for (size_t i = 0; i < index.tensors.size(); ++i) {
      const auto& t = index.tensors[i];
      CHECK(layout.offsets[i] % kTensorAlign == 0);
      const auto* want = files[t.file]->bytes().data() + t.file_offset;
      CHECK_MESSAGE(std::memcmp(back.data() + layout.offsets[i], want, t.bytes) == 0,
                    fmt::format("cuda:{} {}", arena.device(), t.name));
    }
  }
}

std::vector<CudaArena> allocate_arenas(const std::vector<int>& devices, uint64_t bytes) {
  std::vector<CudaArena> arenas;
  for (int d : devices) {
    auto arena = CudaArena::allocate(d, bytes);
    REQUIRE(arena);
    arenas.push_back(std::move(*arena));
  }
  return arenas;
}

TEST_CASE("cuda sink: every chunk size, reader count and device set lands byte-exact, with no misuse") {
  FakeSource a("a", 24 + 1 + 7 + 4096 + 100000 + 3 + 65537 + 300001, 4096);
  FakeSource b("b", 24 + 1 + 7 + 4096 + 100000 + 3 + 65537, 1);
  const std::vector<const FakeSource*> files{&a, &b};
  const auto index = index_of(files);
  for (const std::vector<int>& devices : {std::vector<int>{0}, std::vector<int>{1, 0}}) {
    for (uint64_t chunk : {4096ull, 65536ull}) {
      for (unsigned readers : {1u, 4u}) {
        Recording recording(200);
        const auto layout = layout_arena(index);
        const auto plan = plan_reads(index, layout, chunk);
        auto arenas = allocate_arenas(devices, layout.bytes);
        const unsigned buffers = 3;
        {
          auto sink = CudaSink::create(arenas, {.buffer_bytes = chunk + 8192, .buffers = buffers, .streams_per_device = 2});
          REQUIRE(sink);
          std::atomic<uint64_t> done{0};
          std::vector<const io::ByteSource*> sources{&a, &b};
          REQUIRE(run_pipeline(plan, sources, **sink, {.readers = readers, .chunk_size = chunk}, {}, done));
          REQUIRE((*sink)->finish());
          CHECK(done.load() == plan.bytes);
        }
        check_arenas(arenas, index, layout, files);
        const auto stats = cuda_double::stats();
        CHECK(stats.pinned_allocs == buffers);  // the ring is allocated once
        CHECK(stats.sync_h2d_copies == 0);
        CHECK(stats.async_h2d_copies >= plan.pieces.size() * devices.size() - 2);  // empty tensors may make no copy
        CHECK(stats.streams_with_copies == 2 * devices.size());
        CHECK(stats.event_waits > 0);  // buffers came back through their events
        CHECK(stats.live_pinned_bytes == 0);
        CHECK(a.misaligned == 0);
        CHECK(cuda_double::violations().empty());
      }
    }
  }
}

TEST_CASE("cuda sink: with slow copies and a 2-buffer ring, no buffer is refilled before its copy ran") {
  Recording recording(3000);  // every copy waits 3 ms: readers outrun the streams
  FakeSource a("a", 24 + 1 + 7 + 4096 + 100000 + 3 + 65537 + 300001, 1);
  const std::vector<const FakeSource*> files{&a};
  const auto index = index_of(files);
  const auto layout = layout_arena(index);
  const auto plan = plan_reads(index, layout, 16384);
  auto arenas = allocate_arenas({0}, layout.bytes);
  {
    auto sink = CudaSink::create(arenas, {.buffer_bytes = 16384 + 8192, .buffers = 2, .streams_per_device = 2});
    REQUIRE(sink);
    std::atomic<uint64_t> done{0};
    std::vector<const io::ByteSource*> sources{&a};
    REQUIRE(run_pipeline(plan, sources, **sink, {.readers = 4, .chunk_size = 16384}, {}, done));
    REQUIRE((*sink)->finish());
  }
  check_arenas(arenas, index, layout, files);
  CHECK(cuda_double::violations().empty());
}

TEST_CASE("cuda sink: a read error mid-way tears down cleanly (no buffer freed under a queued copy)") {
  Recording recording(2000);
  FakeSource a("a", 24 + 1 + 7 + 4096 + 100000 + 3 + 65537 + 300001, 1);
  a.fail_at = 300000;
  const auto index = index_of({&a});
  const auto layout = layout_arena(index);
  const auto plan = plan_reads(index, layout, 8192);
  auto arenas = allocate_arenas({0, 1}, layout.bytes);
  {
    auto sink = CudaSink::create(arenas, {.buffer_bytes = 8192 + 8192, .buffers = 4});
    REQUIRE(sink);
    std::atomic<uint64_t> done{0};
    std::vector<const io::ByteSource*> sources{&a};
    auto ok = run_pipeline(plan, sources, **sink, {.readers = 3, .chunk_size = 8192}, {}, done);
    REQUIRE_FALSE(ok);
    CHECK(ok.error().message.find("injected failure") != std::string::npos);
  }
  arenas.clear();
  CHECK(cuda_double::violations().empty());
  CHECK(cuda_double::stats().live_pinned_bytes == 0);
}

// Requests a stop while it reads file offset `at` (so the stop lands within a part being read),
// else reads as `inner` does.
class StoppingSource final : public io::ByteSource {
 public:
  StoppingSource(const FakeSource& inner, uint64_t at, std::stop_source& stop) : inner_(inner), at_(at), stop_(stop) {}
  uint64_t size() const override { return inner_.size(); }
  const std::string& name() const override { return inner_.name(); }
  uint64_t alignment() const override { return inner_.alignment(); }
  Status read_at(uint64_t offset, std::span<std::byte> out) const override {
    if (offset <= at_ && at_ < offset + out.size()) stop_.request_stop();
    return inner_.read_at(offset, out);
  }

 private:
  const FakeSource& inner_;
  uint64_t at_;
  std::stop_source& stop_;
};

// The cuda target on the readers' shared cursor (stage.shared_cursor: on): parts of `request`
// bytes in file order, each in a buffer of the pinned ring.
PipelineOptions cursor_options(unsigned readers, uint64_t chunk, std::optional<uint64_t> request) {
  return {.readers = readers, .chunk_size = chunk, .tune = ReadTuning{.request = request, .shared = true, .probe_bytes = 8192}};
}

TEST_CASE("cuda sink on the shared cursor: parts of every size land byte-exact on every device, with no misuse") {
  FakeSource a("a", 24 + 1 + 7 + 4096 + 100000 + 3 + 65537 + 300001, 1);
  FakeSource b("b", 24 + 1 + 7 + 4096 + 100000 + 3 + 65537, 1);
  const std::vector<const FakeSource*> files{&a, &b};
  const auto index = index_of(files);
  const uint64_t chunk = 65536;
  // 4 KiB and 16 KiB parts, whole chunks in file order (the request given is the chunk), and the
  // default part (1 MiB, capped to the chunk); a 2-buffer ring behind 4 readers as well as a larger one.
  for (std::optional<uint64_t> request : {std::optional<uint64_t>(4096), std::optional<uint64_t>(16384),
                                          std::optional<uint64_t>(chunk), std::optional<uint64_t>()}) {
    for (unsigned buffers : {2u, 6u}) {
      Recording recording(100);
      const auto layout = layout_arena(index);
      const auto plan = plan_reads(index, layout, chunk);
      auto arenas = allocate_arenas({1, 0}, layout.bytes);
      ReadChoices choices;
      {
        auto sink = CudaSink::create(arenas, {.buffer_bytes = chunk + 8192, .buffers = buffers});
        REQUIRE(sink);
        std::atomic<uint64_t> done{0};
        std::vector<const io::ByteSource*> sources{&a, &b};
        auto options = cursor_options(4, chunk, request);
        options.choices = &choices;
        REQUIRE(run_pipeline(plan, sources, **sink, options, {}, done));
        REQUIRE((*sink)->finish());
        CHECK(done.load() == plan.bytes);
      }
      check_arenas(arenas, index, layout, files);
      REQUIRE(choices.candidates.size() == 1);
      CHECK(choices.candidates[0].shared);
      CHECK(choices.candidates[0].request == request.value_or(chunk));
      const auto stats = cuda_double::stats();
      CHECK(stats.pinned_allocs == buffers);
      CHECK(stats.sync_h2d_copies == 0);
      CHECK(stats.live_pinned_bytes == 0);
      CHECK(cuda_double::violations().empty());
    }
  }
}

TEST_CASE("cuda sink on the shared cursor: a stop within a part, and a read error, end it cleanly") {
  Recording recording(500);
  FakeSource a("a", 24 + 1 + 7 + 4096 + 100000 + 3 + 65537 + 300001, 1);
  const auto index = index_of({&a});
  const auto layout = layout_arena(index);
  const auto plan = plan_reads(index, layout, 65536);
  auto arenas = allocate_arenas({0, 1}, layout.bytes);
  SUBCASE("stop requested while a part is read") {
    std::stop_source stop;
    StoppingSource stopping(a, 200001, stop);
    std::atomic<uint64_t> done{0};
    {
      auto sink = CudaSink::create(arenas, {.buffer_bytes = 65536 + 8192, .buffers = 3});
      REQUIRE(sink);
      std::vector<const io::ByteSource*> sources{&stopping};
      auto ok = run_pipeline(plan, sources, **sink, cursor_options(4, 65536, 4096), stop.get_token(), done);
      REQUIRE_FALSE(ok);
      CHECK(ok.error().code == Code::stopped);  // the reader that read it checks before its next part
    }
  }
  SUBCASE("a read error: returned, the other readers stop, nothing freed under a queued copy") {
    a.fail_at = 150000;
    std::atomic<uint64_t> done{0};
    {
      auto sink = CudaSink::create(arenas, {.buffer_bytes = 65536 + 8192, .buffers = 3});
      REQUIRE(sink);
      std::vector<const io::ByteSource*> sources{&a};
      auto ok = run_pipeline(plan, sources, **sink, cursor_options(4, 65536, 4096), {}, done);
      REQUIRE_FALSE(ok);
      CHECK(ok.error().message.find("injected failure at 150000") != std::string::npos);
    }
    CHECK(done.load() < plan.bytes);
  }
  arenas.clear();
  CHECK(cuda_double::violations().empty());
  CHECK(cuda_double::stats().live_pinned_bytes == 0);
}

TEST_CASE("cuda sink: a finished arena exports an IPC handle and the device UUID") {
  Recording recording(0);
  auto arenas = allocate_arenas({1}, 1000);
  auto ipc = arenas[0].export_ipc();
  REQUIRE(ipc);
  CHECK(ipc->handle_hex.size() == 128);
  CHECK(ipc->handle_hex.starts_with("5449444f55424c45"));  // the double's "TIDOUBLE" tag
  CHECK(ipc->uuid == "GPU-74696462-0000-0000-0000-000000000001");
  CHECK(cuda_double::violations().empty());
}

TEST_CASE("cuda sink: the staging ring fits memory_limit and has at least two buffers") {
  CHECK(choose_staging_buffers(1ull << 30, (16u << 20) + 8192, 8) == 16);
  CHECK(choose_staging_buffers(1ull << 30, (16u << 20) + 8192, 64) == 63);
  CHECK(choose_staging_buffers(1ull << 20, (16u << 20) + 8192, 8) == 2);
}

}  // namespace
}  // namespace tensorinit::stage
