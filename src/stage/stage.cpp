#include "stage/stage.hpp"

#include <algorithm>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <memory>
#include <optional>

#include "io/file_source.hpp"
#include "stage/cuda_device.hpp"
#include "stage/cuda_sink.hpp"
#include "stage/cuda_startup.hpp"
#include "stage/pipeline.hpp"
#include "stage/sink.hpp"
#include "util/cpu.hpp"
#include "util/log.hpp"

namespace tensorinit::stage {
namespace {

using manifest::DirectIo;
using manifest::Target;

// cuda and auto wait for `startup` (begun by the caller while it planned), or start CUDA now.
Result<Target> resolve_target(const manifest::Stage& stage, CudaStartup* startup, double& cuda_seconds) {
  if (stage.target == Target::host || stage.target == Target::pagecache) return stage.target;
  std::optional<CudaStartup> own;
  if (!startup || !startup->started()) startup = &own.emplace(stage);
  const Status ready = startup->wait();
  cuda_seconds = startup->seconds();
  switch (stage.target) {
    case Target::host: case Target::pagecache: return stage.target;
    case Target::cuda:
      if (auto ok = ready; !ok)
        return fail(Code::unavailable, fmt::format("stage.target is cuda but CUDA is unusable: {}", ok.error().message));
      return Target::cuda;
    case Target::automatic: break;
  }
  if (auto ok = ready; !ok) {
    log::info(fmt::format("stage.target auto: using host ({})", ok.error().message));
    return Target::host;
  }
  log::info(fmt::format("stage.target auto: using cuda (devices {})", fmt::join(stage.devices, ", ")));
  return Target::cuda;
}

// Reads once, copies to every device in stage.devices (each a full replica), then exports each
// arena. The sink (and its queued copies) is gone before any arena can be freed.
Status stage_to_cuda(StagedModel& staged, const manifest::Stage& stage, const ReadPlan& plan,
                     std::span<const io::ByteSource* const> sources, const PipelineOptions& options,
                     std::stop_token stop, std::atomic<uint64_t>& progress) {
  auto arenas = std::make_shared<std::vector<CudaArena>>();
  for (int d : stage.devices) {
    auto arena = CudaArena::allocate(d, staged.layout.bytes);
    if (!arena) return std::unexpected(arena.error());
    arenas->push_back(std::move(*arena));
  }
  {
    const size_t buffer_bytes = options.chunk_size + 2 * io::kDirectAlign;
    auto sink = CudaSink::create(*arenas, {.buffer_bytes = buffer_bytes,
                                           .buffers = choose_staging_buffers(stage.memory_limit, buffer_bytes, options.readers),
                                           .streams_per_device = 2});
    if (!sink) return std::unexpected(sink.error());
    if (auto ok = run_pipeline(plan, sources, **sink, options, stop, progress); !ok) return ok;
    if (auto ok = (*sink)->finish(); !ok) return ok;
  }
  for (const CudaArena& arena : *arenas) {
    auto ipc = arena.export_ipc();
    if (!ipc) return std::unexpected(ipc.error());
    staged.device_arenas.push_back({.device = arena.device(), .bytes = arena.size(), .ipc_handle = ipc->handle_hex,
                                    .uuid = ipc->uuid});
  }
  staged.device_memory = std::move(arenas);
  return {};
}

// O_DIRECT for cold files; buffered for files already in the page cache (a direct read would
// go to the device again) and for pagecache targets (filling the cache is the point).
bool want_direct(const io::FileSource& file, DirectIo mode, Target target) {
  if (mode == DirectIo::off || target == Target::pagecache) return false;
  if (mode == DirectIo::on) return true;
  return file.resident_fraction() < 0.5;
}

Result<std::vector<std::unique_ptr<io::FileSource>>> open_files(const format::ModelIndex& index,
                                                                const manifest::Stage& stage, Target target,
                                                                bool& any_direct) {
  std::vector<std::unique_ptr<io::FileSource>> files;
  for (const auto& f : index.files) {
    auto source = io::FileSource::open(f.path);
    if (!source) return std::unexpected(source.error());
    if ((*source)->size() != f.size)
      return fail(Code::bad_data, fmt::format("{}: changed size since it was indexed ({} -> {} bytes)", f.path,
                                              f.size, (*source)->size()));
    if (want_direct(**source, stage.direct_io, target)) {
      if ((*source)->enable_direct()) any_direct = true;
      else if (stage.direct_io == DirectIo::on)
        log::warn(fmt::format("{}: O_DIRECT refused by the filesystem; reading buffered", f.path));
    }
    files.push_back(std::move(*source));
  }
  return files;
}

}  // namespace

unsigned choose_readers(const manifest::Stage& stage, unsigned usable_cores) {
  unsigned readers = stage.readers ? stage.readers : std::max(8u, 4 * usable_cores);
  const uint64_t per_reader = stage.chunk_size + 2 * io::kDirectAlign;
  const auto affordable = static_cast<unsigned>(std::max<uint64_t>(1, stage.memory_limit / per_reader));
  return std::min(readers, affordable);
}

Result<StagedModel> stage_model(const manifest::Manifest& manifest, const format::ModelIndex& index,
                                std::stop_token stop, std::atomic<uint64_t>& progress, const std::string& shm_dir,
                                CudaStartup* cuda_startup) {
  double cuda_seconds = 0;
  auto target = resolve_target(manifest.stage, cuda_startup, cuda_seconds);
  if (!target) return std::unexpected(target.error());
  StagedModel staged;
  staged.target = *target;
  staged.cuda_startup_seconds = cuda_seconds;
  staged.readers = choose_readers(manifest.stage, usable_cores());
  staged.chunk_size = manifest.stage.chunk_size;
  staged.layout = layout_arena(index);
  auto files = open_files(index, manifest.stage, *target, staged.direct_io);
  if (!files) return std::unexpected(files.error());
  const ReadPlan plan = plan_reads(index, staged.layout, staged.chunk_size);
  staged.bytes = plan.bytes;
  const PipelineOptions options{.readers = staged.readers, .chunk_size = staged.chunk_size};
  if (*target == Target::pagecache) {
    std::vector<const io::FileSource*> sources;
    for (const auto& f : *files) sources.push_back(f.get());
    if (auto ok = warm_page_cache(plan, sources, options, stop, progress); !ok) return std::unexpected(ok.error());
    return staged;
  }
  std::vector<const io::ByteSource*> sources;
  for (const auto& f : *files) sources.push_back(f.get());
  if (*target == Target::cuda) {
    if (auto ok = stage_to_cuda(staged, manifest.stage, plan, sources, options, stop, progress); !ok)
      return std::unexpected(ok.error());
    return staged;
  }
  remove_stale_partials(shm_dir, manifest.model.name);
  auto arena = ShmArena::create(shm_dir, manifest.model.name, 0, staged.layout.bytes);
  if (!arena) return std::unexpected(arena.error());
  staged.arenas.push_back(std::move(*arena));
  HostSink sink(staged.arenas.back().fd(), staged.arenas.back().path());
  if (auto ok = run_pipeline(plan, sources, sink, options, stop, progress); !ok) return std::unexpected(ok.error());
  for (auto& published : staged.arenas)
    if (auto ok = published.publish(); !ok) return std::unexpected(ok.error());
  return staged;
}

}  // namespace tensorinit::stage
