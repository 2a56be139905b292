#include "cache/pack.hpp"

#include <sys/stat.h>

#include <fmt/format.h>
#include <memory>

namespace tensorinit::cache {

Result<Packed> pack(const ArchiveApi& api, const std::string& dir, const Tree& tree, const std::string& cache_name,
                    int fd, std::stop_token stop) {
  std::unique_ptr<archive, WriteFree> a(api.write_new(), WriteFree{&api});
  std::unique_ptr<archive_entry, EntryFree> e(api.entry_new(), EntryFree{&api});
  if (!a || !e) return fail(Code::internal, "libarchive: out of memory");
  if (api.write_add_filter_zstd(a.get()) != ARCHIVE_OK || api.write_set_format_pax_restricted(a.get()) != ARCHIVE_OK ||
      api.write_set_bytes_in_last_block(a.get(), 1) != ARCHIVE_OK || api.write_open_fd(a.get(), fd) != ARCHIVE_OK)
    return fail(Code::io, fmt::format("archive of {}: {}", dir, archive_error(api, a.get())));

  const auto write_entry = [&](const std::string& path, unsigned type, mode_t perm, uint64_t size, int64_t mtime,
                               const std::string& link) -> Status {
    api.entry_clear(e.get());
    api.entry_copy_pathname(e.get(), path.c_str());
    api.entry_set_filetype(e.get(), type);
    api.entry_set_perm(e.get(), perm);
    api.entry_set_size(e.get(), static_cast<la_int64_t>(size));
    api.entry_set_mtime(e.get(), mtime, 0);
    if (type == AE_IFLNK) api.entry_copy_symlink(e.get(), link.c_str());
    if (api.write_header(a.get(), e.get()) != ARCHIVE_OK)
      return fail(Code::io, fmt::format("archive of {}: {}: {}", dir, path, archive_error(api, a.get())));
    return {};
  };
  const auto write_data = [&](std::span<const std::byte> piece) -> Status {
    if (api.write_data(a.get(), piece.data(), piece.size()) != static_cast<la_ssize_t>(piece.size()))
      return fail(Code::io, fmt::format("archive of {}: {}", dir, archive_error(api, a.get())));
    return {};
  };

  Packed packed;
  packed.skipped = tree.skipped;
  ContentHash hash;
  for (const auto& entry : tree.entries) {
    if (stop.stop_requested()) return fail(Code::stopped, "stopped");
    hash.begin(entry);
    const unsigned type = entry.type == EntryType::file ? AE_IFREG : entry.type == EntryType::directory ? AE_IFDIR : AE_IFLNK;
    if (auto ok = write_entry(entry.path, type, entry.perm, entry.size, entry.mtime, entry.link); !ok)
      return std::unexpected(ok.error());
    if (entry.type == EntryType::file) {
      auto ok = read_entry(dir, entry, stop, [&](std::span<const std::byte> piece) -> Status {
        hash.data(piece);
        return write_data(piece);
      });
      if (!ok) return std::unexpected(ok.error());
      packed.record.bytes += entry.size;
    }
    ++packed.record.files;
  }
  packed.record.cache = cache_name;
  packed.record.sha256 = hash.finish();
  const std::string record = record_json(packed.record);
  if (auto ok = write_entry(std::string(kRecordName), AE_IFREG, 0644, record.size(), 0, ""); !ok)
    return std::unexpected(ok.error());
  if (auto ok = write_data(std::as_bytes(std::span(record))); !ok) return std::unexpected(ok.error());
  if (api.write_close(a.get()) != ARCHIVE_OK)
    return fail(Code::io, fmt::format("archive of {}: {}", dir, archive_error(api, a.get())));
  return packed;
}

}  // namespace tensorinit::cache
