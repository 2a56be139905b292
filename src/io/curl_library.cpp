#include "io/curl_library.hpp"

#include <dlfcn.h>
#include <unistd.h>

#include <climits>
#include <fmt/format.h>
#include <mutex>

#include "util/shared_library.hpp"

namespace tensorinit::io {
namespace {

// Resolves every entry, or names the first one missing.
std::string resolve_all(void* lib, CurlApi& api) {
  std::string missing;
  resolve_symbol(lib, "curl_global_init", api.global_init, missing);
  resolve_symbol(lib, "curl_easy_init", api.easy_init, missing);
  resolve_symbol(lib, "curl_easy_setopt", api.easy_setopt, missing);
  resolve_symbol(lib, "curl_easy_getinfo", api.easy_getinfo, missing);
  resolve_symbol(lib, "curl_easy_cleanup", api.easy_cleanup, missing);
  resolve_symbol(lib, "curl_easy_strerror", api.easy_strerror, missing);
  resolve_symbol(lib, "curl_slist_append", api.slist_append, missing);
  resolve_symbol(lib, "curl_slist_free_all", api.slist_free_all, missing);
  resolve_symbol(lib, "curl_version", api.version, missing);
  resolve_symbol(lib, "curl_multi_init", api.multi_init, missing);
  resolve_symbol(lib, "curl_multi_cleanup", api.multi_cleanup, missing);
  resolve_symbol(lib, "curl_multi_add_handle", api.multi_add_handle, missing);
  resolve_symbol(lib, "curl_multi_remove_handle", api.multi_remove_handle, missing);
  resolve_symbol(lib, "curl_multi_perform", api.multi_perform, missing);
  resolve_symbol(lib, "curl_multi_poll", api.multi_poll, missing);
  resolve_symbol(lib, "curl_multi_wakeup", api.multi_wakeup, missing);
  resolve_symbol(lib, "curl_multi_info_read", api.multi_info_read, missing);
  resolve_symbol(lib, "curl_multi_strerror", api.multi_strerror, missing);
  return missing;
}

}  // namespace

std::vector<std::string> curl_search_path() {
  std::vector<std::string> paths;
  char exe[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0) {
    std::string dir(exe, static_cast<size_t>(n));
    dir.erase(dir.rfind('/') + 1);
    paths.push_back(dir + "../lib/tensorinit/libcurl.so.4");
  }
  paths.push_back("libcurl.so.4");
  return paths;
}

Result<CurlApi> load_curl(std::span<const std::string> candidates) {
  std::string tried;
  for (const auto& path : candidates) {
    // RTLD_LOCAL: libcurl's symbols (and its OpenSSL) stay out of the global namespace.
    void* lib = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
      const char* why = ::dlerror();
      tried += fmt::format("{}{}", tried.empty() ? "" : "; ", why ? why : path);
      continue;
    }
    CurlApi api;
    if (std::string missing = resolve_all(lib, api); !missing.empty()) {
      ::dlclose(lib);
      tried += fmt::format("{}{}: no symbol {}", tried.empty() ? "" : "; ", path, missing);
      continue;
    }
    return api;  // the library stays loaded for the life of the process
  }
  return fail(Code::unavailable,
              fmt::format("remote sources need libcurl (libcurl.so.4; Debian: apt-get install libcurl4), "
                          "which could not be loaded: {}", tried));
}

Result<const CurlApi*> curl_library() {
  static std::once_flag once;
  static Result<CurlApi> loaded = fail(Code::internal, "libcurl not loaded");
  std::call_once(once, [] {
    loaded = load_curl(curl_search_path());
    if (!loaded) return;
    // Not thread-safe in older libcurl releases: call_once makes it happen once, before any use.
    if (CURLcode rc = loaded->global_init(CURL_GLOBAL_DEFAULT); rc != CURLE_OK) {
      loaded = fail(Code::unavailable, fmt::format("libcurl failed to initialise: {}", loaded->easy_strerror(rc)));
    }
  });
  if (!loaded) return std::unexpected(loaded.error());
  return &*loaded;
}

}  // namespace tensorinit::io
