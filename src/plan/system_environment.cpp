#include "plan/system_environment.hpp"

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fmt/format.h>
#include <memory>

#include "format/formats.hpp"
#include "format/model_files.hpp"
#include "format/shard_index.hpp"
#include "io/cache_record.hpp"
#include "io/file_source.hpp"

namespace tensorinit::plan {
namespace {

namespace fs = std::filesystem;

struct FreeDeleter {
  void operator()(std::byte* p) const { std::free(p); }
};

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// The record of one cached file must name where it came from and its exact size.
Status check_cached_file(const manifest::Source& cache, const std::string& name) {
  const std::string path = fmt::format("{}/{}", cache.path, name);
  auto record = io::read_cache_record(path);
  if (!record) return fail(Code::no_source, fmt::format("{} is not complete (no cache record)", path));
  manifest::Source remote{.url = cache.cached_from};
  if (record->url != remote_file_url(remote, name))
    return fail(Code::no_source, fmt::format("{} was cached from {}, not {}", path, record->url, remote_file_url(remote, name)));
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  if (ec || size != record->size)
    return fail(Code::no_source, fmt::format("{} is {} bytes, its record says {}", path, ec ? 0 : size, record->size));
  return {};
}

}  // namespace

Result<format::ModelIndex> index_cache(const manifest::Source& cache, manifest::Format format) {
  std::error_code ec;
  if (!fs::is_directory(cache.path, ec)) return fail(Code::no_source, fmt::format("missing: {} does not exist", cache.path));
  std::vector<std::string> names = cache.files;
  std::string target = cache.path;
  if (names.empty()) {
    const std::string index_path = fmt::format("{}/{}", cache.path, format::kShardIndexName);
    if (fs::exists(index_path, ec)) {
      if (auto ok = check_cached_file(cache, format::kShardIndexName); !ok) return std::unexpected(ok.error());
      auto indexed = format::index_local_model(cache.path, format);
      if (!indexed) return fail(Code::no_source, indexed.error().message);
      for (const auto& f : indexed->files)
        if (auto ok = check_cached_file(cache, fs::path(f.path).filename().string()); !ok) return std::unexpected(ok.error());
      return indexed;
    }
    names = {std::string(format::format_info(format).default_file)};
  }
  for (const auto& name : names)
    if (auto ok = check_cached_file(cache, name); !ok) return std::unexpected(ok.error());
  auto indexed = format::index_model_files(cache.path, names, format);
  if (!indexed) return fail(Code::no_source, indexed.error().message);
  return indexed;
}

CandidateProbe SystemEnvironment::probe(const manifest::Source& source, manifest::Format format) {
  const auto start = std::chrono::steady_clock::now();
  CandidateProbe probe;
  // Every filesystem query on an input path takes an error_code (format/model_files.cpp); should
  // one still throw, that candidate is unusable with the reason, and the plan goes on.
  try {
    probe = probe_source(source, format);
  } catch (const fs::filesystem_error& e) {
    probe = CandidateProbe{.fault = Error{Code::no_source, fmt::format("unreadable: {}", e.what())}};
  }
  index_seconds_ += seconds_since(start);
  return probe;
}

CandidateProbe SystemEnvironment::probe_source(const manifest::Source& source, manifest::Format format) {
  CandidateProbe probe;
  if (!source.cached_from.empty()) {
    auto index = index_cache(source, format);
    if (index) probe.index = std::move(*index);
    else probe.fault = index.error();
  } else if (is_remote(source.type)) {
    auto remote = open_remote_model(source, format, stop_);
    if (remote) {
      probe.index = remote->index;
      probe.remote = std::make_shared<RemoteModel>(std::move(*remote));
    } else {
      probe.fault = remote.error();
    }
  } else {
    auto index = format::index_local_model(source.path, format, stop_);
    if (index) probe.index = std::move(*index);
    else probe.fault = index.error();
  }
  return probe;
}

// Up to 64 MiB from the middle of the largest file: O_DIRECT where possible, so that the figure
// reflects the device rather than the page cache; a ranged GET of the same size when remote.
double SystemEnvironment::measure_read_rate(const manifest::Source&, const CandidateProbe& probe) {
  constexpr size_t kProbeBytes = 64ull << 20;
  const format::ModelIndex& index = *probe.index;
  size_t largest = 0;
  for (size_t i = 0; i < index.files.size(); ++i)
    if (index.files[i].size > index.files[largest].size) largest = i;
  if (index.files.empty()) return 0;
  std::shared_ptr<const io::ByteSource> source;
  if (probe.remote) {
    source = probe.remote->files.at(largest).source;
  } else {
    auto file = io::FileSource::open(index.files[largest].path);
    if (!file) return 0;
    (*file)->enable_direct();
    source = std::move(*file);
  }
  const uint64_t size = source->size();
  const uint64_t len = std::min<uint64_t>(kProbeBytes, size / io::kDirectAlign * io::kDirectAlign);
  if (len == 0) return 1e12;  // nothing to read: instant
  const uint64_t offset = (size - len) / 2 / io::kDirectAlign * io::kDirectAlign;
  std::unique_ptr<std::byte, FreeDeleter> buffer(static_cast<std::byte*>(std::aligned_alloc(io::kDirectAlign, len)));
  const auto start = std::chrono::steady_clock::now();
  if (!source->read_at(offset, std::span(buffer.get(), len))) return 0;
  return static_cast<double>(len) / std::max(seconds_since(start), 1e-6);
}

}  // namespace tensorinit::plan
