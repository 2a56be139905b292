#include "stage/stage.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <memory>
#include <optional>
#include <vector>

#include "format/packed_source.hpp"
#include "io/file_source.hpp"
#include "stage/cuda_startup.hpp"
#include "stage/destination.hpp"
#include "stage/local_files.hpp"
#include "stage/pipeline.hpp"
#include "stage/read_settings.hpp"
#include "stage/tensorizer_reads.hpp"
#include "util/cpu.hpp"
#include "util/log.hpp"

namespace tensorinit::stage {
namespace {

// cuda and auto wait for the request's CUDA start-up (begun by the caller while it planned), or
// start CUDA now; auto falls back to host when CUDA is unusable.
Result<Target> resolve_target(const StageRequest& request) {
  if (request.target == Target::host || request.target == Target::pagecache || request.target == Target::discard)
    return request.target;
  CudaStartup* startup = request.cuda_startup;
  std::optional<CudaStartup> own;
  if (!startup || !startup->started()) startup = &own.emplace(request.target, request.devices);
  const Status& ready = startup->wait();
  if (request.target == Target::cuda) {
    if (!ready) return fail(Code::unavailable, fmt::format("stage.target is cuda but CUDA is unusable: {}", ready.error().message));
    return Target::cuda;
  }
  if (!ready) {
    log::info(fmt::format("stage.target auto: using host ({})", ready.error().message));
    return Target::host;
  }
  log::info(fmt::format("stage.target auto: using cuda (devices {})", fmt::join(request.devices, ", ")));
  return Target::cuda;
}

using Decoders = std::vector<std::unique_ptr<format::PackedSource>>;

// Packed files are read through a decoder over the file; nullptr for the others.
Result<Decoders> open_packed(const format::ModelIndex& index, std::span<const io::ByteSource* const> files) {
  Decoders decoders(files.size());
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

void count_packed(StagedModel& staged, const Decoders& decoders) {
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

// The read controller takes what the request leaves at auto (stage/read_controller.hpp): the
// manifest's values win; nullopt is the controller's to choose.
ReadTuning tuning_for(const ReadSettings& read) {
  return {.direct = read.direct_io, .request = read.chunk_size, .readers = read.readers, .shared = read.shared_cursor};
}


}  // namespace

Result<StagedModel> stage_model(const StageRequest& request, const format::ModelIndex& index, std::stop_token stop,
                                std::atomic<uint64_t>& progress) {
  auto target = resolve_target(request);
  if (!target) return std::unexpected(target.error());
  const std::unique_ptr<Destination> destination = make_destination(*target, request);
  if (auto ok = destination->admit(index); !ok) return std::unexpected(ok.error());
  StagedModel staged;
  staged.target = *target;
  staged.chunk_size = chunk_size_for(request.read, index);
  staged.layout = layout_arena(index);
  // The target holds the model, or nothing sized by the input is allocated (the read plan grows
  // with bytes / chunk_size).
  if (auto ok = destination->claim(staged.layout); !ok) return std::unexpected(ok.error());
  // Local files are read through the descriptors their headers came from; remote ones come opened
  // (versions pinned by the plan).
  std::vector<io::FileSource*> local;
  std::vector<const io::ByteSource*> raw;
  if (!request.remote) {
    auto files = prepare_local_files(index, request.read.direct_io, destination->holds_bytes(), staged.direct_io);
    if (!files) return std::unexpected(files.error());
    local = std::move(*files);
    raw.assign(local.begin(), local.end());
  } else {
    for (const auto& f : request.remote->sources) raw.push_back(f.get());
  }
  if (raw.size() != index.files.size())
    return fail(Code::internal, fmt::format("{} sources for {} files", raw.size(), index.files.size()));
  auto tensorizer = TensorizerReads::prepare(request.checks, index, staged.layout, staged.chunk_size, raw,
                                             request.read.memory_limit);
  if (!tensorizer) return std::unexpected(tensorizer.error());
  if (*tensorizer) staged.chunk_size = (*tensorizer)->chunk_size();  // encryption chunks may be larger
  staged.readers = choose_readers(request.read, reader_bytes(index, staged.chunk_size), usable_cores());
  const ReadPlan plan = *tensorizer ? (*tensorizer)->plan() : plan_reads(index, staged.layout, staged.chunk_size);
  staged.bytes = plan.bytes;
  // A destination that holds the bytes gets them decoded; the page cache keeps the files as they are.
  std::vector<const io::ByteSource*> sources = raw;
  Decoders decoders;
  if (destination->holds_bytes()) {
    auto opened = open_packed(index, raw);
    if (!opened) return std::unexpected(opened.error());
    decoders = std::move(*opened);
    for (size_t i = 0; i < sources.size(); ++i)
      if (decoders[i]) sources[i] = decoders[i].get();
  }
  std::vector<Piece> zeros;  // meta tensors: loaded as zeros, read from nowhere
  for (size_t i = 0; i < index.tensors.size(); ++i)
    if (index.tensors[i].zeros && index.tensors[i].bytes > 0)
      zeros.push_back({.file_offset = 0, .dest_offset = staged.layout.offsets[i], .len = index.tensors[i].bytes});
  Reads reads{.plan = plan, .sources = sources, .local = local,
              .options = {.readers = staged.readers, .chunk_size = staged.chunk_size, .filter = tensorizer->get()},
              .zeros = zeros};
  // Local files are read as the controller finds fastest; remote ones keep their readers (each a
  // connection), their mode being the remote's. The page cache keeps the files' own reads.
  if (!request.remote && destination->holds_bytes()) {
    reads.options.tune = tuning_for(request.read);
    reads.options.choices = &staged.reads;
  }
  if (auto ok = destination->receive(reads, stop, progress); !ok) return std::unexpected(ok.error());
  note_choices(staged);
  if (auto ok = check_files_unchanged(local, !destination->holds_bytes()); !ok) return std::unexpected(ok.error());
  count_packed(staged, decoders);
  if (auto ok = destination->publish(staged); !ok) return std::unexpected(ok.error());
  return staged;
}

}  // namespace tensorinit::stage
