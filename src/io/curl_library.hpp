// libcurl, loaded on demand. tensorinit must not link it: Debian's libcurl pulls ~30 shared
// objects and costs ~4.3 ms per exec (measured; see shared/reference/measured.md), in PID 1's
// window where an early SIGTERM can be lost. So only a remote source dlopens it, once.
// Types and constants come from Debian's curl headers; the functions from this table.
#pragma once

#include <curl/curl.h>

#include <span>
#include <string>
#include <vector>

#include "util/error.hpp"

namespace tensorinit::io {

// The libcurl functions tensorinit calls. Immutable once loaded; thread-safe as libcurl is
// (one easy handle per thread at a time).
struct CurlApi {
  decltype(&curl_global_init) global_init = nullptr;
  decltype(&curl_easy_init) easy_init = nullptr;
  decltype(&curl_easy_setopt) easy_setopt = nullptr;
  decltype(&curl_easy_getinfo) easy_getinfo = nullptr;
  decltype(&curl_easy_cleanup) easy_cleanup = nullptr;
  decltype(&curl_easy_strerror) easy_strerror = nullptr;
  decltype(&curl_slist_append) slist_append = nullptr;
  decltype(&curl_slist_free_all) slist_free_all = nullptr;
  decltype(&curl_version) version = nullptr;
  // One multi handle per easy handle, driven by the calling thread: curl_multi_poll with a short
  // timeout, and curl_multi_wakeup on a stop, give stall detection and stopping 100 ms precision
  // (curl_easy_perform waits up to 1 s between progress callbacks while idle: measured, a 300 ms
  // stall was noticed after 1.2 s). Needs libcurl 7.68 or later (Debian 12 has 7.88).
  decltype(&curl_multi_init) multi_init = nullptr;
  decltype(&curl_multi_cleanup) multi_cleanup = nullptr;
  decltype(&curl_multi_add_handle) multi_add_handle = nullptr;
  decltype(&curl_multi_remove_handle) multi_remove_handle = nullptr;
  decltype(&curl_multi_perform) multi_perform = nullptr;
  decltype(&curl_multi_poll) multi_poll = nullptr;
  decltype(&curl_multi_wakeup) multi_wakeup = nullptr;
  decltype(&curl_multi_info_read) multi_info_read = nullptr;
  decltype(&curl_multi_strerror) multi_strerror = nullptr;

  // Typed setters: curl_easy_setopt is variadic, so an int where libcurl reads a long (or a
  // std::string where it reads a char*) would be undefined behaviour. These fix the types.
  CURLcode set(CURL* h, CURLoption o, long v) const { return easy_setopt(h, o, v); }
  CURLcode set(CURL* h, CURLoption o, const char* v) const { return easy_setopt(h, o, v); }
  CURLcode set(CURL* h, CURLoption o, void* v) const { return easy_setopt(h, o, v); }
  CURLcode set(CURL* h, CURLoption o, curl_slist* v) const { return easy_setopt(h, o, v); }
  CURLcode set(CURL* h, CURLoption o, curl_write_callback v) const { return easy_setopt(h, o, v); }
};

// Where libcurl is looked for, in order: the copy the container artifact ships beside the binary
// (<dir of /proc/self/exe>/../lib/tensorinit/libcurl.so.4), then the system's libcurl.so.4.
std::vector<std::string> curl_search_path();

// dlopens the first candidate that loads and resolves every function of CurlApi. Does not call
// curl_global_init. Code::unavailable naming what was tried when none does. For tests; use
// curl_library().
Result<CurlApi> load_curl(std::span<const std::string> candidates);

// The process-wide libcurl: loaded from curl_search_path() and globally initialised on the first
// call (std::call_once), never unloaded. The same answer on every call. Thread-safe.
Result<const CurlApi*> curl_library();

}  // namespace tensorinit::io
