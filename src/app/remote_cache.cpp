#include "app/remote_cache.hpp"

#include <cstring>
#include <fmt/format.h>

#include "format/shard_index.hpp"
#include "io/http_source.hpp"
#include "util/atomic_file.hpp"
#include "util/log.hpp"

namespace tensorinit::app {
namespace {

// The shard index is small and already in memory: written whole, with its record, when every
// shard made it into the cache.
Status write_shard_index(const std::string& dir, const plan::RemoteModel& remote) {
  const std::string path = fmt::format("{}/{}", dir, format::kShardIndexName);
  auto fill = stage::CacheFill::begin(path, {.url = remote.shard_index_url, .etag = "",
                                             .size = remote.shard_index->size()});
  if (!fill) return std::unexpected(fill.error());
  if (!*fill) return {};  // another replica is writing it
  class Bytes final : public io::ByteSource {
   public:
    Bytes(const std::string& text, std::string name) : text_(text), name_(std::move(name)) {}
    uint64_t size() const override { return text_.size(); }
    const std::string& name() const override { return name_; }
    Status read_at(uint64_t offset, std::span<std::byte> out) const override {
      std::memcpy(out.data(), text_.data() + offset, out.size());
      return {};
    }

   private:
    const std::string& text_;
    std::string name_;
  } bytes(*remote.shard_index, path);
  return (*fill)->commit(bytes);
}

}  // namespace

bool RemoteCache::recorded(const plan::RemoteFile& file) const {
  auto record = stage::read_cache_record(fmt::format("{}/{}", dir_, file.name));
  return record && record->url == file.url && record->etag == file.etag && record->size == file.source->size();
}

RemoteCache::RemoteCache(std::shared_ptr<const plan::RemoteModel> remote, const std::string& cache_dir)
    : remote_(std::move(remote)), dir_(cache_dir) {
  for (const plan::RemoteFile& file : remote_->files) {
    std::unique_ptr<stage::CacheFill> fill;
    if (!dir_.empty()) {
      const std::string path = fmt::format("{}/{}", dir_, file.name);
      auto begun = stage::CacheFill::begin(path, {.url = file.url, .etag = file.etag, .size = file.source->size()});
      if (!begun) log::warn(fmt::format("model.cache: {}; reading {} from remote only", begun.error().message, file.url));
      else if (!*begun) log::info(fmt::format("model.cache: another process is filling {}; reading it from remote", path));
      else fill = std::move(*begun);
    }
    if (fill) sources_.push_back(std::make_shared<stage::WriteThroughSource>(file.source, *fill));
    else sources_.push_back(file.source);
    fills_.push_back(std::move(fill));
  }
}

bool RemoteCache::filling_all() const {
  if (dir_.empty()) return false;
  for (const auto& fill : fills_)
    if (!fill) return false;
  return true;
}

bool RemoteCache::commit() {
  bool whole = !dir_.empty();
  for (size_t i = 0; i < fills_.size(); ++i) {
    if (!fills_[i]) {
      // Another replica was filling it: whole if it has finished (its record is this version).
      whole = whole && recorded(remote_->files[i]);
      continue;
    }
    if (auto ok = fills_[i]->commit(*remote_->files[i].source); !ok) {
      log::warn(fmt::format("model.cache: {} not cached: {}", remote_->files[i].url, ok.error().message));
      whole = false;
    }
  }
  if (whole && remote_->shard_index) {
    if (auto ok = write_shard_index(dir_, *remote_); !ok) {
      log::warn(fmt::format("model.cache: the shard index was not cached: {}", ok.error().message));
      whole = false;
    }
  }
  return whole;
}

}  // namespace tensorinit::app
