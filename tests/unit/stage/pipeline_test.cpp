#include "stage/pipeline.hpp"
#include "stage/shm_arena.hpp"

#include <doctest/doctest.h>

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <mutex>
#include <set>

#include "../scratch_dir.hpp"
#include "fake_source.hpp"
#include "memory_sink.hpp"

namespace tensorinit::stage {
namespace {

using testing::FakeSource;

void check_arena(const std::vector<std::byte>& arena, const format::ModelIndex& index, const ArenaLayout& layout,
                 const std::vector<const FakeSource*>& files) {
  for (size_t i = 0; i < index.tensors.size(); ++i) {
    const auto& t = index.tensors[i];
    CHECK(layout.offsets[i] % kTensorAlign == 0);
    const auto* want = files[t.file]->bytes().data() + t.file_offset;
    CHECK_MESSAGE(std::memcmp(arena.data() + layout.offsets[i], want, t.bytes) == 0, t.name);
  }
}

// Copies pieces into a vector standing in for the arena.
using testing::MemorySink;

}  // namespace

TEST_CASE("stage: every chunk size, reader count and alignment lands every byte in place") {
  for (uint64_t align : {1ull, 4096ull}) {
    FakeSource a("a", 8 + 101 + 1 + 7 + 4096 + 100000 + 3 + 65537, align);
    FakeSource b("b", 8 + 101 + 1 + 7 + 4096 + 100000 + 3 + 65537, align);  // tensors end at EOF, as in safetensors
    const auto index = testing::odd_tensors_index({&a, &b}, 8 + 101, {1, 7, 4096, 100000, 3, 0, 65537});
    for (uint64_t chunk : {4096ull, 16384ull, 1ull << 20}) {
      for (unsigned readers : {1u, 3u, 8u}) {
        const auto layout = layout_arena(index);
        const auto plan = plan_reads(index, layout, chunk);
        CHECK(plan.bytes == index.tensor_bytes());
        std::vector<std::byte> arena(layout.bytes);
        MemorySink sink(arena);
        std::atomic<uint64_t> done{0};
        std::vector<const io::ByteSource*> files{&a, &b};
        auto ok = run_pipeline(plan, files, sink, {.readers = readers, .chunk_size = chunk}, {}, done);
        REQUIRE(ok);
        check_arena(arena, index, layout, {&a, &b});
        CHECK(a.misaligned == 0);
        CHECK(b.misaligned == 0);
      }
    }
  }
}

TEST_CASE("stage: the first read error stops the pipeline and is returned") {
  FakeSource a("a", 1 << 20, 4096);
  FakeSource b("b", 1 << 20, 1);
  b.fail_at = 300000;
  format::ModelIndex index;
  index.files = {{"a", a.size()}, {"b", b.size()}};
  index.tensors = {{.name = "x", .dtype = "U8", .shape = {a.size() - 8}, .file = 0, .file_offset = 8, .bytes = a.size() - 8},
                   {.name = "y", .dtype = "U8", .shape = {b.size() - 8}, .file = 1, .file_offset = 8, .bytes = b.size() - 8}};
  const auto layout = layout_arena(index);
  const auto plan = plan_reads(index, layout, 65536);
  std::vector<std::byte> arena(layout.bytes);
  MemorySink sink(arena);
  std::atomic<uint64_t> done{0};
  std::vector<const io::ByteSource*> files{&a, &b};
  auto ok = run_pipeline(plan, files, sink, {.readers = 4, .chunk_size = 65536}, {}, done);
  REQUIRE_FALSE(ok);
  CHECK(ok.error().code == Code::io);
  CHECK(ok.error().message.find("injected failure at 300000") != std::string::npos);
}

TEST_CASE("stage: a stop request ends staging with Code::stopped") {
  FakeSource a("a", 4 << 20, 1);
  format::ModelIndex index;
  index.files = {{"a", a.size()}};
  index.tensors = {{.name = "x", .dtype = "U8", .shape = {a.size()}, .file = 0, .file_offset = 0, .bytes = a.size()}};
  const auto layout = layout_arena(index);
  const auto plan = plan_reads(index, layout, 4096);
  std::vector<std::byte> arena(layout.bytes);
  MemorySink sink(arena);
  std::atomic<uint64_t> done{0};
  std::stop_source stop;
  stop.request_stop();
  std::vector<const io::ByteSource*> files{&a};
  auto ok = run_pipeline(plan, files, sink, {.readers = 2, .chunk_size = 4096}, stop.get_token(), done);
  REQUIRE_FALSE(ok);
  CHECK(ok.error().code == Code::stopped);
  CHECK(done.load() == 0);  // stopped before the first item: nothing read, nothing counted
  CHECK(a.reads.load() == 0);
}

TEST_CASE("stage: layout aligns every tensor to 256 bytes and chunks split at chunk multiples") {
  format::ModelIndex index;
  index.files = {{"f", 1000}};
  index.tensors = {{.name = "a", .dtype = "U8", .shape = {3}, .file = 0, .file_offset = 8, .bytes = 3},
                   {.name = "b", .dtype = "U8", .shape = {300}, .file = 0, .file_offset = 11, .bytes = 300},
                   {.name = "c", .dtype = "U8", .shape = {689}, .file = 0, .file_offset = 311, .bytes = 689}};
  const auto layout = layout_arena(index);
  CHECK(layout.offsets == std::vector<uint64_t>{0, 256, 768});
  CHECK(layout.bytes == 1536);
  const auto plan = plan_reads(index, layout, 512);
  REQUIRE(plan.chunks.size() == 2);
  CHECK(plan.chunks[0].offset == 8);
  CHECK(plan.chunks[0].len == 504);
  CHECK(plan.chunks[1].offset == 512);
  CHECK(plan.chunks[1].len == 488);
  // c straddles the boundary: two pieces that meet exactly.
  const auto& p = plan.pieces;
  REQUIRE(p.size() == 4);
  CHECK(p[2].file_offset == 311);
  CHECK(p[2].len == 201);
  CHECK(p[3].file_offset == 512);
  CHECK(p[3].dest_offset == 768 + 201);
}

}  // namespace tensorinit::stage

namespace tensorinit::stage {
namespace {

// A model file on the real disk (O_DIRECT works there, not on tmpfs) with odd-sized tensors after
// a 109-byte header, and its index.
struct DiskModel {
  testing::ScratchDir dir{"/var/tmp/tensorinit-test-XXXXXX"};
  format::ModelIndex index;
  std::vector<std::byte> bytes;
  std::unique_ptr<io::FileSource> file;

  explicit DiskModel(uint64_t size) {
    bytes.resize(size);
    for (uint64_t i = 0; i < size; ++i) bytes[i] = static_cast<std::byte>((i * 2654435761u) >> 11);
    const std::string path = dir / "model.bin";
    {
      std::ofstream out(path, std::ios::binary);
      out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(size));
    }
    index.files = {{path, size}};
    uint64_t at = 109, n = 0;
    for (uint64_t len = 1; at < size; len = len * 7 + 4093) {
      len = std::min(len, size - at);
      index.tensors.push_back({.name = fmt::format("t{}", n++), .dtype = "U8", .shape = {len}, .file = 0,
                               .file_offset = at, .bytes = len});
      at += len;
    }
    file = std::move(*io::FileSource::open(path));
  }
};

}  // namespace

TEST_CASE("tuned pipeline: every mode the controller may pick lands every byte (real files, host arena)") {
  DiskModel model(6 << 20);
  const bool direct = model.file->enable_direct();  // false where the scratch disk refuses O_DIRECT
  testing::ScratchDir shm("/dev/shm/tensorinit-test-XXXXXX");
  const auto layout = layout_arena(model.index);
  for (std::optional<bool> want_direct : {std::optional<bool>(), std::optional<bool>(true), std::optional<bool>(false)}) {
    for (uint64_t chunk : {65536ull, 1ull << 20}) {
      CAPTURE(chunk);
      auto arena = ShmArena::create(shm.path, "m", 0, layout.bytes);
      REQUIRE(arena);
      HostSink sink(arena->fd(), "arena");
      CHECK(sink.takes_descriptor(model.file->buffered_fd()));
      const auto plan = plan_reads(model.index, layout, chunk);
      std::atomic<uint64_t> done{0};
      std::vector<const io::ByteSource*> files{model.file.get()};
      ReadChoices choices;
      // Probes of 256 KiB: every candidate runs on a 6 MiB model, switching mid-load.
      const PipelineOptions options{.readers = 6, .chunk_size = chunk,
                                    .tune = ReadTuning{.direct = want_direct, .probe_bytes = 256 << 10},
                                    .choices = &choices};
      REQUIRE(run_pipeline(plan, files, sink, options, {}, done));
      CHECK(done.load() == plan.bytes);
      std::vector<std::byte> got(layout.bytes);
      REQUIRE(::pread(arena->fd(), got.data(), got.size(), 0) == static_cast<ssize_t>(got.size()));
      for (size_t i = 0; i < model.index.tensors.size(); ++i) {
        const auto& t = model.index.tensors[i];
        REQUIRE_MESSAGE(std::memcmp(got.data() + layout.offsets[i], model.bytes.data() + t.file_offset, t.bytes) == 0, t.name);
      }
      // The report's view: every candidate was probed, and the phases add up to the load.
      REQUIRE_FALSE(choices.phases.empty());
      uint64_t phased = 0;
      std::set<ReadMode> modes;
      for (const auto& p : choices.phases) {
        phased += p.bytes;
        modes.insert(p.setting.mode);
      }
      CHECK(phased >= plan.bytes);
      CHECK(modes.count(ReadMode::splice) == (want_direct == true && direct ? 0u : 1u));
      // Cold into the host arena: O_DIRECT only when asked for; otherwise the shared cursor too.
      CHECK(modes.count(ReadMode::direct) == (direct && want_direct == true ? 1u : 0u));
      const bool shared = std::any_of(choices.phases.begin(), choices.phases.end(), [](const ReadPhase& p) { return p.setting.shared; });
      CHECK(shared == (want_direct == false || (direct && !want_direct.has_value())));
      if (want_direct != true) CHECK(choices.candidates.size() >= 2);  // in flight left to auto
      // Whole-chunk splices (no shared cursor) probe the lock on the arena's writes too
      // (ReadSetting::serialised): where O_DIRECT is refused and direct_io is not off.
      const bool unlocked = std::any_of(choices.phases.begin(), choices.phases.end(), [](const ReadPhase& p) { return !p.setting.serialised; });
      CHECK(unlocked == (!direct && want_direct != false));
    }
  }
}

TEST_CASE("tuned pipeline: explicit readers and chunk size hold in every phase; sources of no file read as they are") {
  FakeSource a("a", 3 << 20, 4096);
  format::ModelIndex index;
  index.files = {{"a", a.size()}};
  index.tensors = {{.name = "x", .dtype = "U8", .shape = {a.size() - 8}, .file = 0, .file_offset = 8, .bytes = a.size() - 8}};
  const auto layout = layout_arena(index);
  const auto plan = plan_reads(index, layout, 65536);
  std::vector<std::byte> arena(layout.bytes);
  MemorySink sink(arena);
  std::atomic<uint64_t> done{0};
  std::vector<const io::ByteSource*> files{&a};
  ReadChoices choices;
  const PipelineOptions options{.readers = 8, .chunk_size = 65536,
                                .tune = ReadTuning{.request = 65536, .readers = 3, .probe_bytes = 128 << 10},
                                .choices = &choices};
  REQUIRE(run_pipeline(plan, files, sink, options, {}, done));
  check_arena(arena, index, layout, {&a});
  CHECK(a.misaligned == 0);
  REQUIRE(choices.candidates.size() == 1);
  CHECK(choices.candidates[0] == ReadSetting{.mode = ReadMode::buffered, .request = 65536, .in_flight = 3});
  REQUIRE(choices.phases.size() == 1);
  CHECK_FALSE(choices.phases[0].probe);
}

}  // namespace tensorinit::stage

namespace tensorinit::stage {
namespace {

// Takes descriptors as the host arena does, copies with pread, and records each range it took (in
// the order taken): what the readers handed the sink.
class RecordingSink final : public Sink {
 public:
  explicit RecordingSink(std::vector<std::byte>& arena) : arena_(arena) {}
  bool takes_descriptor(int) const override { return true; }
  Status consume(const Chunk& chunk, std::span<const Piece> pieces, const std::byte* bytes, bool serialised) override {
    for (const auto& p : pieces) std::memcpy(arena_.data() + p.dest_offset, bytes + (p.file_offset - chunk.offset), p.len);
    return record(chunk, serialised);
  }
  Status consume_from(const Chunk& chunk, std::span<const Piece> pieces, int fd, const std::string&, bool serialised) override {
    for (const auto& p : pieces)
      if (::pread(fd, arena_.data() + p.dest_offset, p.len, static_cast<off_t>(p.file_offset)) != static_cast<ssize_t>(p.len))
        return fail(Code::io, "short read");
    return record(chunk, serialised);
  }
  Status consume_mapped(const Chunk& chunk, std::span<const Piece> pieces, const std::byte* mapped,
                        const std::string&, bool serialised) override {
    return consume(chunk, pieces, mapped, serialised);
  }
  std::vector<std::pair<uint64_t, uint64_t>> taken;  // [offset, + len) of each range, in order
  std::set<bool> flags;  // the serialised flag of each write the readers handed over

 private:
  Status record(const Chunk& chunk, bool serialised_write) {
    std::lock_guard lock(mutex_);
    taken.emplace_back(chunk.offset, chunk.len);
    flags.insert(serialised_write);
    return {};
  }
  std::vector<std::byte>& arena_;
  std::mutex mutex_;
};

void check_model(const std::vector<std::byte>& got, const DiskModel& model, const ArenaLayout& layout) {
  for (size_t i = 0; i < model.index.tensors.size(); ++i) {
    const auto& t = model.index.tensors[i];
    REQUIRE_MESSAGE(std::memcmp(got.data() + layout.offsets[i], model.bytes.data() + t.file_offset, t.bytes) == 0, t.name);
  }
}

}  // namespace

TEST_CASE("shared cursor: one reader takes the file in order, 256 KiB parts and the rest of chunks alike") {
  DiskModel model(6 << 20);
  const auto layout = layout_arena(model.index);
  const auto plan = plan_reads(model.index, layout, 1 << 20);
  std::vector<std::byte> arena(layout.bytes);
  RecordingSink sink(arena);
  std::atomic<uint64_t> done{0};
  std::vector<const io::ByteSource*> files{model.file.get()};
  ReadChoices choices;
  // Page-cache reads asked for, one reader: the shared 256 KiB x1 and whole chunks x1, switching
  // every 384 KiB (probes), so parts and rests of chunks interleave.
  const PipelineOptions options{.readers = 8, .chunk_size = 1 << 20,
                                .tune = ReadTuning{.direct = false, .readers = 1, .probe_bytes = 384 << 10},
                                .choices = &choices};
  REQUIRE(run_pipeline(plan, files, sink, options, {}, done));
  CHECK(done.load() == plan.bytes);
  check_model(arena, model, layout);
  REQUIRE(choices.candidates.size() == 2);
  CHECK(choices.candidates[0] == ReadSetting{.mode = ReadMode::splice, .request = 256 << 10, .in_flight = 1, .shared = true});
  // In file order, each range where the one before ended; some were parts, some longer.
  REQUIRE_FALSE(sink.taken.empty());
  CHECK(sink.taken.front().first == plan.chunks.front().offset);
  bool parts = false, longer = false;
  for (size_t i = 0; i < sink.taken.size(); ++i) {
    if (i > 0) CHECK(sink.taken[i].first == sink.taken[i - 1].first + sink.taken[i - 1].second);
    parts = parts || sink.taken[i].second <= (256u << 10);
    longer = longer || sink.taken[i].second > (256u << 10);
  }
  CHECK(parts);
  CHECK(longer);
}

// The setting's lock flag reaches the sink with each write: the unlocked twin's reads hand their
// chunks over with serialised false, the others with true.
TEST_CASE("tuned pipeline: the sink gets each write's serialised flag from its setting") {
  DiskModel model(6 << 20);
  const auto layout = layout_arena(model.index);
  const auto plan = plan_reads(model.index, layout, 1 << 20);
  std::vector<std::byte> arena(layout.bytes);
  RecordingSink sink(arena);
  std::atomic<uint64_t> done{0};
  std::vector<const io::ByteSource*> files{model.file.get()};
  ReadChoices choices;
  const PipelineOptions options{.readers = 8, .chunk_size = 1 << 20,
                                .tune = ReadTuning{.direct = false, .shared = false, .probe_bytes = 512 << 10},
                                .choices = &choices};
  REQUIRE(run_pipeline(plan, files, sink, options, {}, done));
  check_model(arena, model, layout);
  REQUIRE(choices.candidates.size() == 3);
  CHECK_FALSE(choices.candidates[2].serialised);
  CHECK(sink.flags == std::set<bool>{false, true});
}

TEST_CASE("shared cursor: eight readers land every byte; a stop request and a file cut short end it as documented") {
  DiskModel model(6 << 20);
  const auto layout = layout_arena(model.index);
  const auto plan = plan_reads(model.index, layout, 1 << 20);
  const PipelineOptions options{.readers = 8, .chunk_size = 1 << 20,
                                .tune = ReadTuning{.direct = false, .probe_bytes = 512 << 10}};
  std::vector<const io::ByteSource*> files{model.file.get()};
  testing::ScratchDir shm("/dev/shm/tensorinit-test-XXXXXX");
  SUBCASE("every byte, into the host arena") {
    auto arena = ShmArena::create(shm.path, "m", 0, layout.bytes);
    REQUIRE(arena);
    HostSink sink(arena->fd(), "arena");
    std::atomic<uint64_t> done{0};
    REQUIRE(run_pipeline(plan, files, sink, options, {}, done));
    CHECK(done.load() == plan.bytes);
    std::vector<std::byte> got(layout.bytes);
    REQUIRE(::pread(arena->fd(), got.data(), got.size(), 0) == static_cast<ssize_t>(got.size()));
    check_model(got, model, layout);
  }
  SUBCASE("stopped") {
    std::vector<std::byte> arena(layout.bytes);
    RecordingSink sink(arena);
    std::atomic<uint64_t> done{0};
    std::stop_source stop;
    stop.request_stop();
    auto ok = run_pipeline(plan, files, sink, options, stop.get_token(), done);
    REQUIRE_FALSE(ok);
    CHECK(ok.error().code == Code::stopped);
    CHECK(done.load() == 0);
    CHECK(sink.taken.empty());
  }
  SUBCASE("the file cut short after its header was read") {
    REQUIRE(::truncate(model.index.files[0].path.c_str(), 3 << 20) == 0);
    auto arena = ShmArena::create(shm.path, "m", 0, layout.bytes);
    REQUIRE(arena);
    HostSink sink(arena->fd(), "arena");
    std::atomic<uint64_t> done{0};
    auto ok = run_pipeline(plan, files, sink, options, {}, done);
    REQUIRE_FALSE(ok);
    CHECK(ok.error().code == Code::bad_data);
    CHECK(done.load() < plan.bytes);
  }
}

TEST_CASE("shared cursor: cold files into the pipeline's own buffers (discard) land every byte, buffered parts beside O_DIRECT chunks") {
  DiskModel model(6 << 20);
  const bool direct = model.file->enable_direct();  // false where the scratch disk refuses O_DIRECT
  const auto layout = layout_arena(model.index);
  const auto plan = plan_reads(model.index, layout, 2 << 20);
  std::vector<std::byte> arena(layout.bytes);
  testing::MemorySink sink(arena);  // takes no descriptors, has no staging buffers: the discard target's shape
  std::atomic<uint64_t> done{0};
  std::vector<const io::ByteSource*> files{model.file.get()};
  ReadChoices choices;
  const PipelineOptions options{.readers = 8, .chunk_size = 2 << 20, .tune = ReadTuning{.probe_bytes = 512 << 10},
                                .choices = &choices};
  REQUIRE(run_pipeline(plan, files, sink, options, {}, done));
  CHECK(done.load() == plan.bytes);
  check_model(arena, model, layout);
  REQUIRE_FALSE(choices.candidates.empty());
  CHECK(choices.candidates[0].shared == direct);
  if (direct) {
    CHECK(choices.candidates[0] == ReadSetting{.mode = ReadMode::buffered, .request = 1 << 20, .in_flight = 8, .shared = true});
    std::set<ReadMode> modes;
    for (const auto& p : choices.phases) modes.insert(p.setting.mode);
    CHECK(modes.count(ReadMode::direct) == 1);  // O_DIRECT chunks handed out by the same cursor
  }
}

}  // namespace tensorinit::stage
