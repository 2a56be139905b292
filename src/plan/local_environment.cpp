#include "plan/local_environment.hpp"

#include <chrono>
#include <cstdlib>
#include <fmt/format.h>
#include <memory>

#include "format/model_files.hpp"
#include "io/file_source.hpp"

namespace tensorinit::plan {
namespace {

struct FreeDeleter {
  void operator()(std::byte* p) const { std::free(p); }
};

}  // namespace

CandidateProbe LocalEnvironment::probe(const manifest::Source& source, manifest::Format format) {
  using manifest::SourceType;
  if (source.type == SourceType::s3 || source.type == SourceType::http)
    return {.fault = Error{Code::unavailable, fmt::format("{} sources are not supported yet", manifest::to_string(source.type))}};
  const auto start = std::chrono::steady_clock::now();
  auto index = format::index_local_model(source.path, format);
  index_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!index) return {.fault = index.error()};
  return {.index = std::move(*index)};
}

// Reads up to 64 MiB from the middle of the largest file, O_DIRECT where possible, so that the
// figure reflects the device rather than the page cache.
double LocalEnvironment::measure_read_rate(const manifest::Source&, const format::ModelIndex& index) {
  constexpr size_t kProbeBytes = 64ull << 20;
  const format::WeightFile* largest = nullptr;
  for (const auto& f : index.files)
    if (!largest || f.size > largest->size) largest = &f;
  if (!largest) return 0;
  auto source = io::FileSource::open(largest->path);
  if (!source) return 0;
  (*source)->enable_direct();
  const uint64_t len = std::min<uint64_t>(kProbeBytes, largest->size / io::kDirectAlign * io::kDirectAlign);
  if (len == 0) return 1e12;  // nothing to read: instant
  const uint64_t offset = (largest->size - len) / 2 / io::kDirectAlign * io::kDirectAlign;
  std::unique_ptr<std::byte, FreeDeleter> buffer(static_cast<std::byte*>(std::aligned_alloc(io::kDirectAlign, len)));
  const auto start = std::chrono::steady_clock::now();
  if (!(*source)->read_at(offset, std::span(buffer.get(), len))) return 0;
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return static_cast<double>(len) / std::max(seconds, 1e-6);
}

}  // namespace tensorinit::plan
