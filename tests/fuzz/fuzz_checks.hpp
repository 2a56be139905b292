// What every fuzz target checks beside its format's own promises: a broken promise aborts (the
// fuzzer reports it like a crash), and whatever a file supplies can reach JSON (the table, the
// report) without dump() throwing.
#pragma once

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

namespace tensorinit::fuzz {

__extension__ typedef unsigned __int128 u128;  // -Wpedantic: a GNU extension, on purpose

inline void require(bool ok) {
  if (!ok) std::abort();
}

inline void require_json_safe(const std::string& text) {
  try {
    (void)nlohmann::json(text).dump();
  } catch (const nlohmann::json::exception&) {
    std::abort();
  }
}

}  // namespace tensorinit::fuzz
