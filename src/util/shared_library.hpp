// Typed dlsym for the libraries tensorinit loads on demand rather than links (io/curl_library,
// cache/archive_library): each fills a table of function pointers and refuses the library when
// one is missing.
#pragma once

#include <dlfcn.h>

#include <string>

namespace tensorinit {

// Sets `slot` to `symbol` of the dlopened `lib` (nullptr when absent), and records in `missing`
// the first symbol not found, so that one pass over a table names what the library lacks.
// Thread-safe as dlsym is.
template <class Fn>
void resolve_symbol(void* lib, const char* symbol, Fn& slot, std::string& missing) {
  slot = reinterpret_cast<Fn>(::dlsym(lib, symbol));
  if (!slot && missing.empty()) missing = symbol;
}

}  // namespace tensorinit
