#include "stage/destination.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fmt/format.h>

#include "stage/cuda_device.hpp"
#include "stage/cuda_sink.hpp"
#include "stage/sink.hpp"
#include "util/units.hpp"

namespace tensorinit::stage {
namespace {

// The host arena: one file in shm_dir that the server maps by path, published (linked under its
// name) only once every byte is in and the files were checked unchanged.
class HostArena final : public Destination {
 public:
  explicit HostArena(const StageRequest& request)
      : shm_dir_(request.shm_dir), model_(request.model_name), before_publish_(request.before_publish) {}
  Status admit(const format::ModelIndex&) const override { return {}; }

  Status claim(const ArenaLayout& layout) override {
    remove_stale_partials(shm_dir_, model_);
    auto arena = ShmArena::create(shm_dir_, model_, 0, layout.bytes);
    if (!arena) return std::unexpected(arena.error());
    arena_.emplace(std::move(*arena));
    return {};
  }

  Status receive(const Reads& reads, std::stop_token stop, std::atomic<uint64_t>& progress) override {
    HostSink sink(arena_->fd(), arena_->path());
    return run_pipeline(reads.plan, reads.sources, sink, reads.options, stop, progress);
  }

  Status publish(StagedModel& staged) override {
    if (before_publish_)
      if (auto ok = before_publish_(*arena_); !ok) return ok;
    if (auto ok = arena_->publish(); !ok) return ok;
    staged.arenas.push_back(std::move(*arena_));
    arena_.reset();
    return {};
  }

 private:
  std::string shm_dir_, model_;
  std::function<Status(const ShmArena&)> before_publish_;
  std::optional<ShmArena> arena_;  // removed on destruction until published
};

// The page cache: the server reads the model's files itself, so staging makes them resident and
// keeps nothing. Every tensor's bytes must lie in its file as they are (check_pagecache_can_serve),
// and a remote model must be landing in model.cache, where the server finds it.
class PageCache final : public Destination {
 public:
  explicit PageCache(const StageRequest& request)
      : remote_(request.remote.has_value()),
        written_through_(request.remote && request.remote->written_through),
        cache_dir_(request.remote ? request.remote->cache_dir : "") {}
  bool holds_bytes() const override { return false; }

  Status admit(const format::ModelIndex& index) const override {
    if (remote_ && !written_through_)
      return cache_dir_.empty()
                 ? fail(Code::bad_manifest, "stage.target pagecache with a remote source needs model.cache (the "
                                            "server reads the files from there)")
                 : fail(Code::unavailable, fmt::format("{}: not every file can be written to the cache (another "
                                                       "process is filling it, or the server sends no ETag or "
                                                       "Last-Modified: see the warnings above); stage.target pagecache "
                                                       "needs the files there (retry, or use target host)",
                                                       cache_dir_));
    return check_pagecache_can_serve(index);
  }

  // A model larger than the machine's memory cannot be made resident, and its read plan (one
  // entry per chunk) would be sized by a header's claim alone.
  Status claim(const ArenaLayout& layout) override {
    const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
    if (pages <= 0 || page <= 0) return {};
    const uint64_t memory = static_cast<uint64_t>(pages) * static_cast<uint64_t>(page);
    if (layout.bytes <= memory) return {};
    return fail(Code::io, fmt::format("stage.target pagecache: the model holds {} of tensors but this machine has {} "
                                      "of memory, so the page cache cannot hold it", format_bytes(layout.bytes),
                                      format_bytes(memory)));
  }

  // Local files without a filter: each chunk made resident, nothing copied. Through a filter
  // (tensorizer checksums) or from remote (written through to the cache as it is read): read and
  // dropped.
  Status receive(const Reads& reads, std::stop_token stop, std::atomic<uint64_t>& progress) override {
    if (!reads.local.empty() && !reads.options.filter) {
      const std::vector<const io::FileSource*> files(reads.local.begin(), reads.local.end());
      return warm_page_cache(reads.plan, files, reads.options, stop, progress);
    }
    NullSink discard;
    return run_pipeline(reads.plan, reads.sources, discard, reads.options, stop, progress);
  }

  Status publish(StagedModel&) override { return {}; }

 private:
  bool remote_, written_through_;
  std::string cache_dir_;
};

// CUDA device memory: one arena per device, each a full replica, filled through the cuda sink's
// pinned buffers (read once, copied to every device) and exported (IPC handles) on publish.
class CudaMemory final : public Destination {
 public:
  CudaMemory(std::vector<int> devices, uint64_t memory_limit) : devices_(std::move(devices)), memory_limit_(memory_limit) {}
  Status admit(const format::ModelIndex&) const override { return {}; }

  // A model too large for a device fails here, before any allocation sized by the input.
  Status claim(const ArenaLayout& layout) override {
    arenas_ = std::make_shared<std::vector<CudaArena>>();
    for (int d : devices_) {
      auto arena = CudaArena::allocate(d, layout.bytes);
      if (!arena) return std::unexpected(arena.error());
      arenas_->push_back(std::move(*arena));
    }
    return {};
  }

  // The sink (and its queued copies) is gone before this returns: no copy outlives the reads.
  Status receive(const Reads& reads, std::stop_token stop, std::atomic<uint64_t>& progress) override {
    const size_t buffer_bytes = staging_buffer_bytes(reads.options.chunk_size);
    auto sink = CudaSink::create(*arenas_, {.buffer_bytes = buffer_bytes,
                                            .buffers = choose_staging_buffers(memory_limit_, buffer_bytes,
                                                                              reads.options.readers),
                                            .streams_per_device = 2});
    if (!sink) return std::unexpected(sink.error());
    if (auto ok = run_pipeline(reads.plan, reads.sources, **sink, reads.options, stop, progress); !ok) return ok;
    if (auto ok = copy_zeros(**sink, reads.zeros); !ok) return ok;
    return (*sink)->finish();
  }

  // cudaMalloc'd memory holds whatever the device held before (unlike a new host arena, which
  // reads as zeros): ranges no read fills get zeros through the sink's pinned buffers, on the
  // same streams and events as the reads, so finish() covers them too.
  static Status copy_zeros(CudaSink& sink, std::span<const Piece> zeros) {
    for (const Piece& range : zeros)
      for (uint64_t done = 0; done < range.len;) {
        auto buffer = sink.acquire();
        if (!buffer) return std::unexpected(buffer.error());
        const uint64_t len = std::min<uint64_t>(range.len - done, sink.buffer_size());
        std::memset(*buffer, 0, len);
        const Piece piece{.file_offset = 0, .dest_offset = range.dest_offset + done, .len = len};
        auto ok = sink.consume({.file = 0, .offset = 0, .len = len, .first_piece = 0, .piece_count = 1}, {&piece, 1}, *buffer, true);
        sink.release(*buffer);
        if (!ok) return ok;
        done += len;
      }
    return {};
  }

  Status publish(StagedModel& staged) override {
    for (const CudaArena& arena : *arenas_) {
      auto ipc = arena.export_ipc();
      if (!ipc) return std::unexpected(ipc.error());
      staged.device_arenas.push_back({.device = arena.device(), .bytes = arena.size(), .ipc_handle = ipc->handle_hex,
                                      .uuid = ipc->uuid});
    }
    staged.device_memory = std::move(arenas_);
    return {};
  }

 private:
  std::vector<int> devices_;
  uint64_t memory_limit_;
  std::shared_ptr<std::vector<CudaArena>> arenas_;  // freed on destruction unless published
};

// Discard: read, verify (tensorizer filters, files unchanged), keep nothing; a benchmark of the
// reads alone. Nothing to claim or publish.
class Discard final : public Destination {
 public:
  Status admit(const format::ModelIndex&) const override { return {}; }
  Status claim(const ArenaLayout&) override { return {}; }
  Status receive(const Reads& reads, std::stop_token stop, std::atomic<uint64_t>& progress) override {
    NullSink discard;
    return run_pipeline(reads.plan, reads.sources, discard, reads.options, stop, progress);
  }
  Status publish(StagedModel&) override { return {}; }
};

}  // namespace

Status check_pagecache_can_serve(const format::ModelIndex& index) {
  constexpr const char* kFix = "use target host or cuda (tensorinit then stages the tensors itself)";
  for (const auto& f : index.files)
    if (f.packed)
      return fail(Code::no_source, fmt::format("{}: stage.target pagecache cannot serve a packed file (the server would "
                                               "read compressed bytes); {}, or unpack it with zstd -d", f.path, kFix));
  for (const auto& t : index.tensors) {
    if (t.bytes == 0) continue;
    const std::string& path = index.files.at(t.file).path;
    if (t.zeros)
      return fail(Code::no_source, fmt::format("{}: stage.target pagecache cannot serve tensor '{}': a tensorizer meta "
                                               "tensor has no bytes in the file (it loads as zeros); {}", path, t.name, kFix));
    if (t.encrypted)
      return fail(Code::no_source, fmt::format("{}: stage.target pagecache cannot serve an encrypted tensorizer file "
                                               "(tensor '{}': the server would read ciphertext); {}", path, t.name, kFix));
  }
  return {};
}

std::unique_ptr<Destination> make_destination(Target target, const StageRequest& request) {
  switch (target) {
    case Target::pagecache: return std::make_unique<PageCache>(request);
    case Target::cuda: return std::make_unique<CudaMemory>(request.devices, request.read.memory_limit);
    case Target::discard: return std::make_unique<Discard>();
    case Target::host: case Target::automatic: break;
  }
  return std::make_unique<HostArena>(request);
}

}  // namespace tensorinit::stage
