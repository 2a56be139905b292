// libarchive, loaded on demand (like io/curl_library.hpp). Debian's libarchive13 maps 15 shared
// objects (libxml2, ICU, nettle, lzma, ...): linking it would put them in every exec of PID 1,
// whose start-up window must stay light, and its static archive needs the same closure. So only a
// manifest with `caches:` dlopens it, once. Types come from Debian's archive.h (libarchive-dev).
#pragma once

#include <archive.h>
#include <archive_entry.h>

#include <string>

#include "util/error.hpp"

namespace tensorinit::cache {

// The libarchive functions tensorinit calls. Immutable once loaded; thread-safe as libarchive is
// (one `struct archive` per thread at a time).
struct ArchiveApi {
  decltype(&archive_read_new) read_new = nullptr;
  decltype(&archive_read_support_filter_zstd) read_support_filter_zstd = nullptr;
  decltype(&archive_read_support_format_tar) read_support_format_tar = nullptr;
  decltype(&archive_read_open) read_open = nullptr;
  decltype(&archive_read_next_header) read_next_header = nullptr;
  decltype(&archive_read_data) read_data = nullptr;
  decltype(&archive_read_free) read_free = nullptr;
  decltype(&archive_filter_bytes) filter_bytes = nullptr;
  decltype(&archive_error_string) error_string = nullptr;

  decltype(&archive_write_new) write_new = nullptr;
  decltype(&archive_write_add_filter_zstd) write_add_filter_zstd = nullptr;
  decltype(&archive_write_set_format_pax_restricted) write_set_format_pax_restricted = nullptr;
  decltype(&archive_write_set_bytes_in_last_block) write_set_bytes_in_last_block = nullptr;
  decltype(&archive_write_open_fd) write_open_fd = nullptr;
  decltype(&archive_write_header) write_header = nullptr;
  decltype(&archive_write_data) write_data = nullptr;
  decltype(&archive_write_finish_entry) write_finish_entry = nullptr;
  decltype(&archive_write_close) write_close = nullptr;
  decltype(&archive_write_free) write_free = nullptr;
  decltype(&archive_write_disk_new) write_disk_new = nullptr;
  decltype(&archive_write_disk_set_options) write_disk_set_options = nullptr;

  decltype(&archive_entry_new) entry_new = nullptr;
  decltype(&archive_entry_free) entry_free = nullptr;
  decltype(&archive_entry_clear) entry_clear = nullptr;
  decltype(&archive_entry_pathname) entry_pathname = nullptr;
  decltype(&archive_entry_copy_pathname) entry_copy_pathname = nullptr;
  decltype(&archive_entry_filetype) entry_filetype = nullptr;
  decltype(&archive_entry_set_filetype) entry_set_filetype = nullptr;
  decltype(&archive_entry_size) entry_size = nullptr;
  decltype(&archive_entry_set_size) entry_set_size = nullptr;
  decltype(&archive_entry_perm) entry_perm = nullptr;
  decltype(&archive_entry_set_perm) entry_set_perm = nullptr;
  decltype(&archive_entry_set_mtime) entry_set_mtime = nullptr;
  decltype(&archive_entry_symlink) entry_symlink = nullptr;
  decltype(&archive_entry_copy_symlink) entry_copy_symlink = nullptr;
  decltype(&archive_entry_hardlink) entry_hardlink = nullptr;
  decltype(&archive_entry_copy_hardlink) entry_copy_hardlink = nullptr;
};

// Deleters for unique_ptr over libarchive's handles, and its last error as text.
struct ReadFree {
  const ArchiveApi* api;
  void operator()(archive* a) const { api->read_free(a); }
};
struct WriteFree {
  const ArchiveApi* api;
  void operator()(archive* a) const { api->write_free(a); }
};
struct EntryFree {
  const ArchiveApi* api;
  void operator()(archive_entry* e) const { api->entry_free(e); }
};
inline std::string archive_error(const ArchiveApi& api, archive* a) {
  const char* s = api.error_string(a);
  return s ? s : "unknown libarchive error";
}

// The process-wide libarchive: dlopened (libarchive.so.13) on the first call (std::call_once),
// never unloaded. Code::unavailable naming the package when it cannot be loaded. Thread-safe.
Result<const ArchiveApi*> archive_library();

}  // namespace tensorinit::cache
