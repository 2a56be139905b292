#include "stage/pipeline.hpp"

#include <cstdlib>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace tensorinit::stage {
namespace {

// Staging buffers suit O_DIRECT on any device we know (4 KiB logical blocks at most).
constexpr size_t kStagingAlign = 4096;

struct AlignedBuffer {
  explicit AlignedBuffer(size_t n)
      : size(n), data(static_cast<std::byte*>(std::aligned_alloc(kStagingAlign, n))) {}
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  ~AlignedBuffer() { std::free(data); }
  size_t size;
  std::byte* data;
};

// Shared by the workers: the next item to take, and the first failure.
class Work {
 public:
  explicit Work(size_t items) : total_(items) {}
  std::optional<size_t> take() {
    if (failed_.load(std::memory_order_relaxed)) return std::nullopt;
    size_t i = next_.fetch_add(1, std::memory_order_relaxed);
    return i < total_ ? std::optional(i) : std::nullopt;
  }
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
  size_t total_;
  std::atomic<size_t> next_{0};
  std::atomic<bool> failed_{false};
  std::mutex mutex_;
  std::optional<Error> error_;
};

// A worker's body for one item; made once per worker so it can own per-worker state.
using ItemBody = std::function<Status(size_t item)>;

// Runs `make_body()`'s body over every item on `workers` threads: a plain parallel loop.
Status parallel_items(size_t items, unsigned workers, std::stop_token stop, const std::function<ItemBody()>& make_body) {
  Work work(items);
  workers = std::max(1u, std::min<unsigned>(workers, static_cast<unsigned>(std::max<size_t>(items, 1))));
  {
    std::vector<std::jthread> threads;
    for (unsigned w = 0; w < workers; ++w)
      threads.emplace_back([&] {
        const ItemBody body = make_body();
        while (auto i = work.take()) {
          if (stop.stop_requested()) return work.fail(Error{Code::stopped, "staging stopped"});
          if (auto ok = body(*i); !ok) return work.fail(std::move(ok.error()));
        }
      });
  }
  return work.result();
}

// Reads the chunk into `buffer` from its aligned-down start: the aligned body in one read (O_DIRECT
// for direct files), the unaligned tail at the end of a file (under one block) in another. The
// filter, if any, sees the bytes before the sink.
Status read_staged(const io::ByteSource& file, const Chunk& chunk, std::byte* buffer, std::span<const Piece> pieces,
                   Sink& sink, ChunkFilter* filter, size_t chunk_index) {
  const uint64_t align = file.alignment();
  const uint64_t lead = chunk.offset % align;
  const uint64_t start = chunk.offset - lead;
  const uint64_t total = lead + chunk.len;
  const uint64_t body = total / align * align;
  if (body > 0)
    if (auto ok = file.read_at(start, std::span(buffer, body)); !ok) return ok;
  if (total > body)
    if (auto ok = file.read_at(start + body, std::span(buffer + body, total - body)); !ok) return ok;
  if (filter)
    if (auto ok = filter->filter(chunk_index, std::span(buffer + lead, chunk.len)); !ok) return ok;
  return sink.consume(chunk, pieces, buffer + lead);
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

// The pipeline over a sink's own buffers (pinned, for the cuda sink): a reader takes a buffer per
// chunk and hands it back after consume; the sink recycles it once its copies are done.
Status run_pooled(const ReadPlan& plan, std::span<const io::ByteSource* const> files, Sink& sink,
                  StagingBuffers& pool, const PipelineOptions& options, std::stop_token stop,
                  std::atomic<uint64_t>& done) {
  if (pool.buffer_size() < options.chunk_size + 2 * kStagingAlign)
    return fail(Code::internal, "staging buffers are smaller than a chunk");
  return parallel_items(item_count(plan, options), options.readers, stop, [&]() -> ItemBody {
    return [&](size_t item) -> Status {
      for (auto [i, end] = item_chunks(options, item); i < end; ++i) {
        if (stop.stop_requested()) return fail(Code::stopped, "staging stopped");
        const Chunk& chunk = plan.chunks[i];
        const auto pieces = std::span(plan.pieces).subspan(chunk.first_piece, chunk.piece_count);
        auto buffer = pool.acquire();
        if (!buffer) return std::unexpected(buffer.error());
        auto ok = read_staged(*files[chunk.file], chunk, *buffer, pieces, sink, options.filter, i);
        pool.release(*buffer);
        if (!ok) return ok;
        done.fetch_add(chunk.len, std::memory_order_relaxed);
      }
      return {};
    };
  });
}

}  // namespace

Status run_pipeline(const ReadPlan& plan, std::span<const io::ByteSource* const> files, Sink& sink,
                    const PipelineOptions& options, std::stop_token stop, std::atomic<uint64_t>& done) {
  if (StagingBuffers* pool = sink.staging()) return run_pooled(plan, files, sink, *pool, options, stop, done);
  return parallel_items(item_count(plan, options), options.readers, stop, [&]() -> ItemBody {
    auto buffer = std::make_shared<AlignedBuffer>(options.chunk_size + 2 * kStagingAlign);
    return [&, buffer](size_t item) -> Status {
      for (auto [i, end] = item_chunks(options, item); i < end; ++i) {
        if (stop.stop_requested()) return fail(Code::stopped, "staging stopped");
        const Chunk& chunk = plan.chunks[i];
        const auto pieces = std::span(plan.pieces).subspan(chunk.first_piece, chunk.piece_count);
        if (auto ok = read_staged(*files[chunk.file], chunk, buffer->data, pieces, sink, options.filter, i); !ok)
          return ok;
        done.fetch_add(chunk.len, std::memory_order_relaxed);
      }
      return {};
    };
  });
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
