#include "cache/archive_library.hpp"

#include <dlfcn.h>

#include <fmt/format.h>
#include <mutex>
#include <string>

#include "util/shared_library.hpp"

namespace tensorinit::cache {
namespace {

#define TENSORINIT_RESOLVE(field, symbol) resolve_symbol(lib, #symbol, api.field, missing)

std::string resolve_all(void* lib, ArchiveApi& api) {
  std::string missing;
  TENSORINIT_RESOLVE(read_new, archive_read_new);
  TENSORINIT_RESOLVE(read_support_filter_zstd, archive_read_support_filter_zstd);
  TENSORINIT_RESOLVE(read_support_format_tar, archive_read_support_format_tar);
  TENSORINIT_RESOLVE(read_open, archive_read_open);
  TENSORINIT_RESOLVE(read_next_header, archive_read_next_header);
  TENSORINIT_RESOLVE(read_data, archive_read_data);
  TENSORINIT_RESOLVE(read_free, archive_read_free);
  TENSORINIT_RESOLVE(filter_bytes, archive_filter_bytes);
  TENSORINIT_RESOLVE(error_string, archive_error_string);
  TENSORINIT_RESOLVE(write_new, archive_write_new);
  TENSORINIT_RESOLVE(write_add_filter_zstd, archive_write_add_filter_zstd);
  TENSORINIT_RESOLVE(write_set_format_pax_restricted, archive_write_set_format_pax_restricted);
  TENSORINIT_RESOLVE(write_set_bytes_in_last_block, archive_write_set_bytes_in_last_block);
  TENSORINIT_RESOLVE(write_open_fd, archive_write_open_fd);
  TENSORINIT_RESOLVE(write_header, archive_write_header);
  TENSORINIT_RESOLVE(write_data, archive_write_data);
  TENSORINIT_RESOLVE(write_finish_entry, archive_write_finish_entry);
  TENSORINIT_RESOLVE(write_close, archive_write_close);
  TENSORINIT_RESOLVE(write_free, archive_write_free);
  TENSORINIT_RESOLVE(write_disk_new, archive_write_disk_new);
  TENSORINIT_RESOLVE(write_disk_set_options, archive_write_disk_set_options);
  TENSORINIT_RESOLVE(entry_new, archive_entry_new);
  TENSORINIT_RESOLVE(entry_free, archive_entry_free);
  TENSORINIT_RESOLVE(entry_clear, archive_entry_clear);
  TENSORINIT_RESOLVE(entry_pathname, archive_entry_pathname);
  TENSORINIT_RESOLVE(entry_copy_pathname, archive_entry_copy_pathname);
  TENSORINIT_RESOLVE(entry_filetype, archive_entry_filetype);
  TENSORINIT_RESOLVE(entry_set_filetype, archive_entry_set_filetype);
  TENSORINIT_RESOLVE(entry_size, archive_entry_size);
  TENSORINIT_RESOLVE(entry_set_size, archive_entry_set_size);
  TENSORINIT_RESOLVE(entry_perm, archive_entry_perm);
  TENSORINIT_RESOLVE(entry_set_perm, archive_entry_set_perm);
  TENSORINIT_RESOLVE(entry_set_mtime, archive_entry_set_mtime);
  TENSORINIT_RESOLVE(entry_symlink, archive_entry_symlink);
  TENSORINIT_RESOLVE(entry_copy_symlink, archive_entry_copy_symlink);
  TENSORINIT_RESOLVE(entry_hardlink, archive_entry_hardlink);
  TENSORINIT_RESOLVE(entry_copy_hardlink, archive_entry_copy_hardlink);
  return missing;
}

#undef TENSORINIT_RESOLVE

Result<ArchiveApi> load() {
  constexpr const char* kName = "libarchive.so.13";
  // RTLD_LOCAL: libarchive's closure (libxml2, ICU, ...) stays out of the global namespace.
  void* lib = ::dlopen(kName, RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    const char* why = ::dlerror();
    return fail(Code::unavailable, fmt::format("caches need libarchive ({}; Debian: apt-get install libarchive13), "
                                               "which could not be loaded: {}", kName, why ? why : "?"));
  }
  ArchiveApi api;
  if (std::string missing = resolve_all(lib, api); !missing.empty()) {
    ::dlclose(lib);
    return fail(Code::unavailable, fmt::format("{}: no symbol {} (libarchive 3.3 or later is needed)", kName, missing));
  }
  return api;
}

}  // namespace

Result<const ArchiveApi*> archive_library() {
  static std::once_flag once;
  static Result<ArchiveApi> loaded = fail(Code::internal, "libarchive not loaded");
  std::call_once(once, [] { loaded = load(); });
  if (!loaded) return std::unexpected(loaded.error());
  return &*loaded;
}

}  // namespace tensorinit::cache
