#include "stage/pipeline.hpp"

#include <cstdlib>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace tensorinit::stage {
namespace {

struct AlignedBuffer {
  explicit AlignedBuffer(size_t n)
      : size(n), data(static_cast<std::byte*>(std::aligned_alloc(io::kDirectAlign, n))) {}
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  ~AlignedBuffer() { std::free(data); }
  size_t size;
  std::byte* data;
};

// Shared by the readers: the next chunk to take, and the first failure.
class Work {
 public:
  explicit Work(size_t chunks) : total_(chunks) {}
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

// A buffered file read straight into the destination: no staging copy.
Status read_in_place(const io::FileSource& file, std::span<const Piece> pieces, Sink& sink) {
  for (const auto& p : pieces)
    if (auto ok = io::pread_fully(file.fd(), p.file_offset, std::span(sink.place(p.dest_offset), p.len), file.name()); !ok)
      return ok;
  return {};
}

// Reads the chunk (from its aligned-down start when direct) into `buffer`, then hands it over.
Status read_staged(const io::FileSource& file, const Chunk& chunk, std::span<const Piece> pieces,
                   AlignedBuffer& buffer, Sink& sink) {
  const uint64_t lead = file.direct() ? chunk.offset % io::kDirectAlign : 0;
  const std::span<std::byte> span(buffer.data, buffer.size);
  auto ok = file.direct() ? file.read_direct(chunk.offset - lead, span, lead + chunk.len)
                          : file.read_at(chunk.offset, span.first(chunk.len));
  if (!ok) return ok;
  return sink.consume(chunk, pieces, buffer.data + lead);
}

void read_chunks(const ReadPlan& plan, std::span<const io::FileSource* const> files, Sink& sink,
                 const PipelineOptions& options, std::stop_token stop, std::atomic<uint64_t>& done, Work& work) {
  AlignedBuffer buffer(options.chunk_size + 2 * io::kDirectAlign);
  const bool host_addressable = sink.place(0) != nullptr;
  while (auto i = work.take()) {
    if (stop.stop_requested()) return work.fail(Error{Code::stopped, "staging stopped"});
    const Chunk& chunk = plan.chunks[*i];
    const io::FileSource& file = *files[chunk.file];
    const auto pieces = std::span(plan.pieces).subspan(chunk.first_piece, chunk.piece_count);
    auto ok = (!file.direct() && host_addressable) ? read_in_place(file, pieces, sink)
                                                   : read_staged(file, chunk, pieces, buffer, sink);
    if (!ok) return work.fail(std::move(ok.error()));
    done.fetch_add(chunk.len, std::memory_order_relaxed);
  }
}

}  // namespace

Status run_pipeline(const ReadPlan& plan, std::span<const io::FileSource* const> files, Sink& sink,
                    const PipelineOptions& options, std::stop_token stop, std::atomic<uint64_t>& done) {
  Work work(plan.chunks.size());
  const unsigned readers = std::max(1u, std::min<unsigned>(options.readers, static_cast<unsigned>(plan.chunks.size())));
  {
    std::vector<std::jthread> threads;
    for (unsigned r = 0; r < readers; ++r)
      threads.emplace_back([&] { read_chunks(plan, files, sink, options, stop, done, work); });
  }
  return work.result();
}

}  // namespace tensorinit::stage
