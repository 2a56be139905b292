#include "stage/stage.hpp"

#include <unistd.h>

#include <algorithm>
#include <functional>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <memory>
#include <numeric>
#include <optional>

#include "format/packed_source.hpp"
#include "io/file_source.hpp"
#include "stage/cuda_device.hpp"
#include "stage/cuda_sink.hpp"
#include "stage/cuda_startup.hpp"
#include "stage/local_files.hpp"
#include "stage/pipeline.hpp"
#include "stage/sink.hpp"
#include "stage/tensorizer_reads.hpp"
#include "util/cpu.hpp"
#include "util/log.hpp"
#include "util/units.hpp"

namespace tensorinit::stage {
namespace {

using manifest::Target;

// cuda and auto wait for `startup` (begun by the caller while it planned), or start CUDA now.
Result<Target> resolve_target(const manifest::Stage& stage, CudaStartup* startup, double& cuda_seconds) {
  if (stage.target == Target::host || stage.target == Target::pagecache || stage.target == Target::discard)
    return stage.target;
  std::optional<CudaStartup> own;
  if (!startup || !startup->started()) startup = &own.emplace(stage);
  const Status ready = startup->wait();
  cuda_seconds = startup->seconds();
  switch (stage.target) {
    case Target::host: case Target::pagecache: case Target::discard: return stage.target;
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

using CudaArenas = std::shared_ptr<std::vector<CudaArena>>;

// One arena per device in stage.devices, each a full replica: claimed before the read plan is
// built, so a model too large for the device fails here, before any allocation sized by the input.
Result<CudaArenas> allocate_cuda_arenas(const manifest::Stage& stage, uint64_t bytes) {
  auto arenas = std::make_shared<std::vector<CudaArena>>();
  for (int d : stage.devices) {
    auto arena = CudaArena::allocate(d, bytes);
    if (!arena) return std::unexpected(arena.error());
    arenas->push_back(std::move(*arena));
  }
  return arenas;
}

// Reads once, copies to every device (each a full replica), checks the files (`before_export`),
// then exports each arena. The sink (and its queued copies) is gone before any arena can be freed.
Status stage_to_cuda(StagedModel& staged, CudaArenas arenas, const manifest::Stage& stage, const ReadPlan& plan,
                     std::span<const io::ByteSource* const> sources, const PipelineOptions& options,
                     std::stop_token stop, std::atomic<uint64_t>& progress, const std::function<Status()>& before_export) {
  {
    const size_t buffer_bytes = options.chunk_size + 2 * io::kDirectAlign;
    auto sink = CudaSink::create(*arenas, {.buffer_bytes = buffer_bytes,
                                           .buffers = choose_staging_buffers(stage.memory_limit, buffer_bytes, options.readers),
                                           .streams_per_device = 2});
    if (!sink) return std::unexpected(sink.error());
    if (auto ok = run_pipeline(plan, sources, **sink, options, stop, progress); !ok) return ok;
    if (auto ok = (*sink)->finish(); !ok) return ok;
  }
  if (auto ok = before_export(); !ok) return ok;
  for (const CudaArena& arena : *arenas) {
    auto ipc = arena.export_ipc();
    if (!ipc) return std::unexpected(ipc.error());
    staged.device_arenas.push_back({.device = arena.device(), .bytes = arena.size(), .ipc_handle = ipc->handle_hex,
                                    .uuid = ipc->uuid});
  }
  staged.device_memory = std::move(arenas);
  return {};
}

// Packed files: chunks of whole frames, so that no frame is decoded twice. Frames of F decoded
// bytes start at multiples of F, and so do chunks when the chunk size is a multiple of F (and of
// 4 KiB, for the other files' O_DIRECT reads). Frames of varying size: the chunk size as given.
uint64_t packed_chunk_size(const format::ModelIndex& index, uint64_t chunk_size) {
  uint64_t multiple = io::kDirectAlign;
  for (const auto& f : index.files)
    if (f.packed && f.frame_bytes) multiple = std::lcm(multiple, f.frame_bytes);
  if (multiple == io::kDirectAlign || multiple > (1ull << 30)) return chunk_size;
  return std::max<uint64_t>(1, (chunk_size + multiple - 1) / multiple) * multiple;
}

// What the readers' budget (memory_limit) must cover per reader: the chunk and, with packed files,
// the compressed bytes of a chunk (no more than the chunk) and one decoded frame.
manifest::Stage reader_budget(const manifest::Stage& stage, const format::ModelIndex& index, uint64_t chunk_size) {
  manifest::Stage budget = stage;
  budget.chunk_size = chunk_size;
  for (const auto& f : index.files)
    if (f.packed) budget.chunk_size = std::max(budget.chunk_size, 2 * chunk_size + (f.frame_bytes ? f.frame_bytes : chunk_size));
  return budget;
}

// Packed files are read through a decoder over the file; nullptr for the others.
Result<std::vector<std::unique_ptr<format::PackedSource>>> open_packed(const format::ModelIndex& index,
                                                                      std::span<const io::ByteSource* const> files) {
  std::vector<std::unique_ptr<format::PackedSource>> decoders(files.size());
  for (size_t i = 0; i < files.size(); ++i) {
    if (!index.files[i].packed) continue;
    auto decoder = format::PackedSource::open(*files[i]);
    if (!decoder) return std::unexpected(decoder.error());
    if ((*decoder)->size() != index.files[i].size)
      return fail(Code::bad_data, fmt::format("{}: changed since it was indexed ({} -> {} decoded bytes)",
                                              index.files[i].path, index.files[i].size, (*decoder)->size()));
    decoders[i] = std::move(*decoder);
  }
  return decoders;
}

// Target pagecache holds the model in the machine's memory: a model larger than that cannot be
// made resident, and its read plan (one entry per chunk) would be sized by a header's claim alone.
Status check_page_cache_room(uint64_t bytes) {
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page <= 0) return {};
  const uint64_t memory = static_cast<uint64_t>(pages) * static_cast<uint64_t>(page);
  if (bytes <= memory) return {};
  return fail(Code::io, fmt::format("stage.target pagecache: the model holds {} of tensors but this machine has {} of "
                                    "memory, so the page cache cannot hold it", format_bytes(bytes), format_bytes(memory)));
}

void count_packed(StagedModel& staged, const std::vector<std::unique_ptr<format::PackedSource>>& decoders) {
  for (const auto& d : decoders)
    if (d) {
      staged.compressed_bytes += d->compressed_bytes_read();
      staged.decoded_bytes += d->decoded_bytes();
    }
}

// What the report says of the reads: what carried the load when the controller chose.
void note_choices(StagedModel& staged) {
  if (staged.reads.phases.empty()) return;
  staged.direct_io = staged.direct_io && staged.reads.best.mode == ReadMode::direct;
  staged.readers = staged.reads.best.in_flight;
}

// The read controller takes what the manifest leaves at auto (stage/read_controller.hpp).
ReadTuning tuning_for(const manifest::Stage& stage) {
  ReadTuning tuning;
  if (stage.direct_io != manifest::DirectIo::automatic) tuning.direct = stage.direct_io == manifest::DirectIo::on;
  if (stage.chunk_size_set) tuning.request = stage.chunk_size;
  if (stage.readers) tuning.readers = stage.readers;
  return tuning;
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
                                CudaStartup* cuda_startup, std::span<const std::shared_ptr<const io::ByteSource>> opened) {
  double cuda_seconds = 0;
  auto target = resolve_target(manifest.stage, cuda_startup, cuda_seconds);
  if (!target) return std::unexpected(target.error());
  if (*target == Target::pagecache)
    if (auto ok = check_pagecache_can_serve(index); !ok) return std::unexpected(ok.error());
  StagedModel staged;
  staged.target = *target;
  staged.cuda_startup_seconds = cuda_seconds;
  staged.chunk_size = packed_chunk_size(index, manifest.stage.chunk_size);
  staged.layout = layout_arena(index);
  // The target holds the model, or nothing sized by the input is allocated (the read plan grows
  // with bytes / chunk_size): the host arena and device memory are claimed first.
  CudaArenas cuda_arenas;
  if (*target == Target::pagecache) {
    if (auto ok = check_page_cache_room(staged.layout.bytes); !ok) return std::unexpected(ok.error());
  } else if (*target == Target::cuda) {
    auto arenas = allocate_cuda_arenas(manifest.stage, staged.layout.bytes);
    if (!arenas) return std::unexpected(arenas.error());
    cuda_arenas = std::move(*arenas);
  } else if (*target == Target::host) {
    remove_stale_partials(shm_dir, manifest.model.name);
    auto arena = ShmArena::create(shm_dir, manifest.model.name, 0, staged.layout.bytes);
    if (!arena) return std::unexpected(arena.error());
    staged.arenas.push_back(std::move(*arena));
  }
  // Local files are read through the descriptors their headers came from; remote ones come opened
  // (versions pinned by the plan).
  std::vector<io::FileSource*> local;
  std::vector<const io::ByteSource*> raw;
  if (opened.empty()) {
    auto files = prepare_local_files(index, manifest.stage, *target, staged.direct_io);
    if (!files) return std::unexpected(files.error());
    local = std::move(*files);
    raw.assign(local.begin(), local.end());
  } else {
    for (const auto& f : opened) raw.push_back(f.get());
  }
  const auto unchanged = [&] { return check_files_unchanged(local, *target); };
  auto tensorizer = TensorizerReads::prepare(manifest.model, index, staged.layout, staged.chunk_size, raw,
                                             manifest.stage.memory_limit);
  if (!tensorizer) return std::unexpected(tensorizer.error());
  if (*tensorizer) staged.chunk_size = (*tensorizer)->chunk_size();  // encryption chunks may be larger
  staged.readers = choose_readers(reader_budget(manifest.stage, index, staged.chunk_size), usable_cores());
  const ReadPlan plan = *tensorizer ? (*tensorizer)->plan() : plan_reads(index, staged.layout, staged.chunk_size);
  staged.bytes = plan.bytes;
  // Local files are read as the controller finds fastest; remote ones keep their readers (each a
  // connection), their mode being the remote's.
  PipelineOptions options{.readers = staged.readers, .chunk_size = staged.chunk_size, .filter = tensorizer->get()};
  if (opened.empty() && *target != Target::pagecache) {
    options.tune = tuning_for(manifest.stage);
    options.choices = &staged.reads;
  }
  if (*target == Target::pagecache) {
    if (!opened.empty()) {  // remote: reading writes the files through to the cache the server reads
      NullSink discard;
      if (auto ok = run_pipeline(plan, raw, discard, options, stop, progress); !ok) return std::unexpected(ok.error());
      return staged;
    }
    const std::vector<const io::FileSource*> sources(local.begin(), local.end());
    if (auto ok = *tensorizer ? warm_through_filter(**tensorizer, sources, options, stop, progress)
                              : warm_page_cache(plan, sources, options, stop, progress);
        !ok)
      return std::unexpected(ok.error());
    if (auto ok = unchanged(); !ok) return std::unexpected(ok.error());
    return staged;
  }
  std::vector<const io::ByteSource*> sources = raw;
  auto decoders = open_packed(index, sources);
  if (!decoders) return std::unexpected(decoders.error());
  for (size_t i = 0; i < sources.size(); ++i)
    if ((*decoders)[i]) sources[i] = (*decoders)[i].get();
  if (*target == Target::cuda) {
    if (auto ok = stage_to_cuda(staged, std::move(cuda_arenas), manifest.stage, plan, sources, options, stop, progress,
                                unchanged);
        !ok)
      return std::unexpected(ok.error());
    count_packed(staged, *decoders);
    note_choices(staged);
    return staged;
  }
  if (*target == Target::discard) {  // read, verify (filters, unchanged files), keep nothing
    NullSink discard;
    if (auto ok = run_pipeline(plan, sources, discard, options, stop, progress); !ok) return std::unexpected(ok.error());
    if (auto ok = unchanged(); !ok) return std::unexpected(ok.error());
    count_packed(staged, *decoders);
    note_choices(staged);
    return staged;
  }
  HostSink sink(staged.arenas.back().fd(), staged.arenas.back().path());
  if (auto ok = run_pipeline(plan, sources, sink, options, stop, progress); !ok) return std::unexpected(ok.error());
  note_choices(staged);
  if (auto ok = unchanged(); !ok) return std::unexpected(ok.error());
  count_packed(staged, *decoders);
  for (auto& published : staged.arenas)
    if (auto ok = published.publish(); !ok) return std::unexpected(ok.error());
  return staged;
}

}  // namespace tensorinit::stage
