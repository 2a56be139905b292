#include "stage/pipeline.hpp"
#include "stage/read_cursor.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <fmt/format.h>
#include <functional>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <thread>
#include <vector>

#include "util/exit_code.hpp"
#include "util/log.hpp"

namespace tensorinit::stage {
namespace {

// Staging buffers (kStagingAlign) suit O_DIRECT on any device we know (4 KiB logical blocks at most).
struct AlignedBuffer {
  explicit AlignedBuffer(size_t n)
      : size(n), data(static_cast<std::byte*>(std::aligned_alloc(kStagingAlign, n))) {}  // null: refused
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  ~AlignedBuffer() { std::free(data); }
  size_t size;
  std::byte* data;
};

// Shared by the workers: the first failure.
class Work {
 public:
  bool failed() const { return failed_.load(std::memory_order_relaxed); }
  void fail(Error e) {
    std::lock_guard lock(mutex_);
    if (!error_) error_ = std::move(e);
    failed_.store(true);
  }
  Status result() {
    std::lock_guard lock(mutex_);
    if (error_) return std::unexpected(*error_);
    return {};
  }

 private:
  std::atomic<bool> failed_{false};
  std::mutex mutex_;
  std::optional<Error> error_;
};

// A worker's body: does one step of the work, false when there is none left. Made once per
// worker so it can own per-worker state.
using StepBody = std::function<Result<bool>()>;

// Runs `make_body()`'s body on `workers` threads until every one has run out of work or the first
// failure (a body checks `stop` itself once it has taken work).
Status parallel_steps(unsigned workers, const std::function<StepBody()>& make_body) {
  Work work;
  {
    std::vector<std::jthread> threads;
    for (unsigned w = 0; w < std::max(1u, workers); ++w)
      threads.emplace_back([&] {
        try {  // a throw left here would std::terminate (134, no error line)
          const StepBody body = make_body();
          while (!work.failed()) {
            auto more = body();
            if (!more) return work.fail(std::move(more.error()));
            if (!*more) return;
          }
        } catch (const std::exception& e) {  // bad_alloc: a memory limit
          work.fail(Error{Code::internal, thrown_message(e)});
        }
      });
  }
  return work.result();
}

// Runs `make_body()`'s body over every item on `workers` threads: a plain parallel loop, items
// taken in order off one counter.
using ItemBody = std::function<Status(size_t item)>;
Status parallel_items(size_t items, unsigned workers, std::stop_token stop, const std::function<ItemBody()>& make_body) {
  std::atomic<size_t> next{0};
  workers = std::min<unsigned>(workers, static_cast<unsigned>(std::max<size_t>(items, 1)));
  return parallel_steps(workers, [&]() -> StepBody {
    return [&next, items, stop, body = make_body()]() -> Result<bool> {
      const size_t i = next.fetch_add(1, std::memory_order_relaxed);
      if (i >= items) return false;
      if (stop.stop_requested()) return fail(Code::stopped, "staging stopped");
      if (auto ok = body(i); !ok) return std::unexpected(std::move(ok.error()));
      return true;
    };
  });
}

// The average piece a chunk must have for a splice (below it, the chunk is mapped: consume_mapped).
// Measured here, 1 GiB in 10,000 tensors (107 KB each), source cached: spliced 1.00 s of CPU,
// mapped 0.92, the same bytes in 100 tensors 0.73-0.86 (two runs).
constexpr uint64_t kSplicePiece = 1 << 20;

// The read controller shared by the readers: hands out a setting per read and holds readers back
// while the current setting's reads in flight are all taken. Thread-safe.
class Governor {
 public:
  explicit Governor(ControllerOptions options) : controller_(std::move(options)) {}

  struct Slot {
    ReadController::Ticket ticket;
    uint64_t bytes = 0;  // what this read may cover
  };
  // A read of up to `remaining` bytes: waits for a free slot under the current setting.
  Slot acquire(uint64_t remaining) {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [&] { return active_ < controller_.upcoming().in_flight; });
    const ReadSetting& s = controller_.upcoming();
    const uint64_t bytes = s.mode == ReadMode::splice ? remaining : std::min(remaining, s.request);
    ++active_;
    return {controller_.begin(bytes, seconds()), bytes};
  }
  // Work off `cursor` for the current setting: a part of `request` bytes with its slot taken when
  // the setting shares the cursor (waiting for a free slot first, so parts go out in the order
  // they are read), else the next chunk (or its rest) for read_chunk, which takes the slots.
  // nullopt when the cursor is done.
  struct Handout {
    ReadCursor::Part part;
    std::optional<Slot> slot;
    std::pair<uint64_t, uint64_t> announce;  // file bytes to announce first (shared settings)
  };
  std::optional<Handout> hand_out(ReadCursor& cursor) {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [&] { return !controller_.upcoming().shared || active_ < controller_.upcoming().in_flight; });
    const ReadSetting& s = controller_.upcoming();
    const auto part = cursor.take(s.shared ? s.request : 0);
    if (!part) return std::nullopt;
    if (!s.shared) return Handout{*part, std::nullopt, {}};
    ++active_;
    const uint64_t bytes = part->to - part->from;
    return Handout{*part, Slot{controller_.begin(bytes, seconds()), bytes}, cursor.announce(*part)};
  }
  // A chunk read because its file could not be mapped (consume_mapped): said once per run, with
  // the first reason, and kept for the report.
  void note_unmapped(const Error& why) {
    std::lock_guard lock(mutex_);
    if (!unmapped_.empty()) return;
    unmapped_ = why.message;
    log::info(fmt::format("{}; its chunks of small tensors are read through the page cache instead", why.message));
  }
  bool any_shared() const { return std::ranges::any_of(controller_.candidates(), &ReadSetting::shared); }
  void release(const Slot& slot, uint64_t bytes) {
    {
      std::lock_guard lock(mutex_);
      --active_;
      controller_.end(slot.ticket, bytes, seconds());
    }
    cv_.notify_all();
  }
  unsigned threads() const {
    unsigned most = 1;
    for (const auto& c : controller_.candidates()) most = std::max(most, c.in_flight);
    return most;
  }
  void report(ReadChoices& out) {
    std::lock_guard lock(mutex_);
    out = {.candidates = controller_.candidates(), .phases = controller_.phases(), .best = controller_.carried(),
           .unmapped = unmapped_};
  }

 private:
  double seconds() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count(); }

  std::mutex mutex_;
  std::condition_variable cv_;
  ReadController controller_;
  unsigned active_ = 0;
  std::string unmapped_;
  const std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

// The settings to run with: the controller's candidates when tuning, else one fixed setting
// (whole chunks, `readers` at once, each file's own mode).
ControllerOptions governor_options(const ReadPlan& plan, std::span<const io::ByteSource* const> files, Sink& sink,
                                   const PipelineOptions& options) {
  const unsigned readers = std::max(1u, options.readers);
  if (!options.tune)
    return {.candidates = {{.mode = ReadMode::direct, .request = options.chunk_size, .in_flight = readers}}};
  ReadFacts facts{.direct = options.tune->direct, .request = options.tune->request, .in_flight = options.tune->readers,
                  .shared = options.tune->shared, .chunk_size = options.chunk_size, .max_in_flight = readers};
  bool all_local = !files.empty() && !options.filter && !sink.staging();
  for (const io::ByteSource* f : files) {
    const auto* local = dynamic_cast<const io::FileSource*>(f);
    if (local && local->direct()) facts.direct_available = true;
    all_local = all_local && local && sink.takes_descriptor(local->buffered_fd());
  }
  facts.splice_available = all_local;
  facts.cursor_available = !options.filter;
  ControllerOptions out = controller_options(candidates_for(facts), plan.bytes);
  if (options.tune->probe_bytes) {
    out.probe_bytes = options.tune->probe_bytes;
    out.exploit_bytes = 4 * options.tune->probe_bytes;
  }
  return out;
}

// Reads [offset, + out.size()) of `file` in `mode`: buffered through the page cache for a local
// file; otherwise the source's own way (O_DIRECT where enabled and aligned), with an unaligned tail
// (under one block, at the end of a file) read on its own.
Status read_range(const io::ByteSource& file, const io::FileSource* local, ReadMode mode, uint64_t offset,
                  std::span<std::byte> out) {
  if (mode != ReadMode::direct && local) return local->read_buffered(offset, out);
  const uint64_t align = file.alignment();
  const uint64_t body = out.size() / align * align;
  if (body > 0)
    if (auto ok = file.read_at(offset, out.first(body)); !ok) return ok;
  if (out.size() > body)
    if (auto ok = file.read_at(offset + body, out.subspan(body)); !ok) return ok;
  return {};
}

// Chunks of many small tensors in splice mode: the file's pages mapped (populated: no fault per
// page) and written into the sink by the kernel, one copy. Measured here, 1 GiB in 100,000 tensors,
// page cache warm: pread + pwritev (two copies) 1.09 s of CPU, mapped 0.98, populated 0.94, the
// same bytes in 100 tensors (spliced) 0.94; a splice per piece cost as much as the second copy.
// The error, when the file cannot be mapped (io::FileSource::map_populated says why): the caller
// reads the chunk instead; the sink's own result otherwise.
Result<Status> consume_mapped(const Chunk& chunk, std::span<const Piece> pieces, const io::FileSource& file, Sink& sink,
                              bool serialised) {
  auto mapped = file.map_populated(chunk.offset, chunk.len);
  if (!mapped) return std::unexpected(std::move(mapped.error()));
  return sink.consume_mapped(chunk, pieces, mapped->at, file.name(), serialised);
}

// Whether a chunk's pieces are large enough to splice (kSplicePiece): splices cost two system calls
// per piece, so chunks of many small tensors are mapped.
bool splices(const Chunk& chunk) { return chunk.len / std::max<uint32_t>(chunk.piece_count, 1) >= kSplicePiece; }

// What read_chunk reads: a chunk of the plan, or a part of one (a chunk of its own with its pieces
// clipped) handed out by a shared cursor.
struct ChunkJob {
  const Chunk& chunk;
  std::span<const Piece> pieces;
  size_t index = 0;                       // the plan's chunk (the filter's numbering)
  bool splice = false;                    // splice mode splices it (else maps it): splices(plan chunk)
  bool announce = true;                   // WILLNEED before reading through the page cache
  std::optional<Governor::Slot> slot;     // taken already, for all of it
};

// One chunk, read in the controller's requests into `buffer` from its aligned-down start (or
// spliced into the sink), filtered, handed to the sink.
Status read_chunk(Governor& governor, const io::ByteSource& file, const ChunkJob& job, std::byte* buffer, Sink& sink,
                  ChunkFilter* filter) {
  const Chunk& chunk = job.chunk;
  const auto pieces = job.pieces;
  const auto* local = dynamic_cast<const io::FileSource*>(&file);
  const uint64_t align = file.alignment();
  const uint64_t lead = chunk.offset % align;
  const uint64_t start = chunk.offset - lead;
  const uint64_t total = lead + chunk.len;
  bool announced = !job.announce;
  bool serialised = true;  // the setting of the chunk's last read
  std::optional<Governor::Slot> given = job.slot;
  for (uint64_t at = 0; at < total;) {
    const auto slot = given ? *given : governor.acquire(total - at);
    const uint64_t grant = given ? total - at : slot.bytes;
    given.reset();
    const ReadMode mode = slot.ticket.setting.mode;
    serialised = slot.ticket.setting.serialised;
    if (local && mode != ReadMode::direct && !announced) {
      local->will_need(start + at, total - at);
      announced = true;
    }
    if (mode == ReadMode::splice && at == 0 && !filter && job.splice) {
      auto ok = sink.consume_from(chunk, pieces, local->buffered_fd(), local->name(), serialised);
      governor.release(slot, ok ? chunk.len : 0);
      return ok;
    }
    if (mode == ReadMode::splice && at == 0 && !filter && local) {
      auto mapped = consume_mapped(chunk, pieces, *local, sink, serialised);
      if (mapped) {
        governor.release(slot, *mapped ? chunk.len : 0);
        return *mapped;
      }
      governor.note_unmapped(mapped.error());  // read through the page cache below
    }
    if (!buffer) {  // its staging buffer was refused (a memory limit); splices and mappings need none
      governor.release(slot, 0);
      return fail(Code::internal, "out of memory (a staging buffer)");
    }
    const uint64_t n = std::min(grant, total - at);
    auto ok = read_range(file, local, mode, start + at, std::span(buffer + at, n));
    governor.release(slot, ok ? n : 0);
    if (!ok) return ok;
    at += n;
  }
  if (filter)
    if (auto ok = filter->filter(job.index, std::span(buffer + lead, chunk.len)); !ok) return ok;
  return sink.consume(chunk, pieces, buffer + lead, serialised);
}

// The chunks of work item `item`: itself without a filter, else as the filter groups them.
std::pair<size_t, size_t> item_chunks(const PipelineOptions& options, size_t item) {
  if (!options.filter) return {item, item + 1};
  const auto starts = options.filter->item_starts();
  return {starts[item], starts[item + 1]};
}

size_t item_count(const ReadPlan& plan, const PipelineOptions& options) {
  if (!options.filter) return plan.chunks.size();
  return options.filter->item_starts().empty() ? 0 : options.filter->item_starts().size() - 1;
}

// Where a reader's chunk goes: its own buffer, or one of the sink's (pinned, for the cuda sink),
// taken per chunk and handed back after consume; the sink recycles it once its copies are done.
struct ReaderBuffer {
  std::unique_ptr<AlignedBuffer> own;
  StagingBuffers* pool = nullptr;
  Result<std::byte*> take() { return pool ? pool->acquire() : Result<std::byte*>(own->data); }
  void give_back(std::byte* b) {
    if (pool) pool->release(b);
  }
};

}  // namespace

Status run_pipeline(const ReadPlan& plan, std::span<const io::ByteSource* const> files, Sink& sink,
                    const PipelineOptions& options, std::stop_token stop, std::atomic<uint64_t>& done) {
  StagingBuffers* pool = sink.staging();
  if (pool && pool->buffer_size() < staging_buffer_bytes(options.chunk_size))
    return fail(Code::internal, "staging buffers are smaller than a chunk");
  Governor governor(governor_options(plan, files, sink, options));
  const auto make_reader = [&] {
    auto reader = std::make_shared<ReaderBuffer>();
    if (pool) reader->pool = pool;
    else reader->own = std::make_unique<AlignedBuffer>(staging_buffer_bytes(options.chunk_size));
    return reader;
  };
  if (governor.any_shared() && !options.filter) {  // one cursor, parts or chunks as the setting says
    ReadCursor cursor(plan);
    auto ok = parallel_steps(governor.threads(), [&]() -> StepBody {
      return [&, reader = make_reader(), clipped = std::make_shared<std::vector<Piece>>()]() -> Result<bool> {
        if (stop.stop_requested()) return fail(Code::stopped, "staging stopped");
        // The buffer first, then the work: a reader holding a read slot never waits for a buffer,
        // so readers waiting for slots with a buffer of the sink's ring (the cuda target) and
        // readers holding slots waiting for a buffer cannot wait on each other.
        auto buffer = reader->take();
        if (!buffer) return std::unexpected(buffer.error());
        const auto handout = governor.hand_out(cursor);
        if (!handout) {
          reader->give_back(*buffer);
          return false;
        }
        const auto [chunk, pieces] = part_of(plan, handout->part, *clipped);
        const auto [ahead, ahead_end] = handout->announce;
        if (const auto* f = dynamic_cast<const io::FileSource*>(files[chunk.file]); f && ahead_end > ahead)
          f->will_need(ahead, ahead_end - ahead);
        const ChunkJob job{.chunk = chunk, .pieces = pieces, .index = handout->part.chunk,
                           .splice = splices(plan.chunks[handout->part.chunk]),
                           .announce = !handout->slot, .slot = handout->slot};
        auto read = read_chunk(governor, *files[chunk.file], job, *buffer, sink, nullptr);
        reader->give_back(*buffer);
        if (!read) return std::unexpected(read.error());
        done.fetch_add(chunk.len, std::memory_order_relaxed);
        return true;
      };
    });
    if (options.choices) governor.report(*options.choices);
    return ok;
  }
  auto ok = parallel_items(item_count(plan, options), governor.threads(), stop, [&]() -> ItemBody {
    auto reader = make_reader();
    return [&, reader](size_t item) -> Status {
      for (auto [i, end] = item_chunks(options, item); i < end; ++i) {
        if (stop.stop_requested()) return fail(Code::stopped, "staging stopped");
        const Chunk& chunk = plan.chunks[i];
        const auto pieces = std::span(plan.pieces).subspan(chunk.first_piece, chunk.piece_count);
        auto buffer = reader->take();
        if (!buffer) return std::unexpected(buffer.error());
        const ChunkJob job{.chunk = chunk, .pieces = pieces, .index = i, .splice = splices(chunk)};
        auto read = read_chunk(governor, *files[chunk.file], job, *buffer, sink, options.filter);
        reader->give_back(*buffer);
        if (!read) return read;
        done.fetch_add(chunk.len, std::memory_order_relaxed);
      }
      return {};
    };
  });
  if (options.choices) governor.report(*options.choices);
  return ok;
}

Status warm_page_cache(const ReadPlan& plan, std::span<const io::FileSource* const> files,
                       const PipelineOptions& options, std::stop_token stop, std::atomic<uint64_t>& done) {
  return parallel_items(plan.chunks.size(), options.readers, stop, [&]() -> ItemBody {
    return [&](size_t i) -> Status {
      const Chunk& chunk = plan.chunks[i];
      if (auto ok = files[chunk.file]->warm(chunk.offset, chunk.len); !ok) return ok;
      done.fetch_add(chunk.len, std::memory_order_relaxed);
      return {};
    };
  });
}

}  // namespace tensorinit::stage
