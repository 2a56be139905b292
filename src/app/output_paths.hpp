// Where tensorinit may write its own outputs (the report, the ready file): never over a name it
// owns in the shm dir (any model's arena, table, socket or name lock: "tensorinit-*" and
// ".tensorinit-*") and never into a local weight source. A report renamed over the arena after
// staging handed the server the report's JSON as its weights (exit 0); over a weight file it
// destroyed the model (docs/notes/attacker3.md). Also the path helpers the start-up caches use
// for their own overlap checks. Thread-safe (pure, but for filesystem lookups).
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "manifest/manifest.hpp"
#include "util/error.hpp"

namespace tensorinit::app {

// `path` with symlinks resolved where it exists (weakly_canonical), normalised, without a
// trailing '/'.
std::filesystem::path resolved(const std::string& path);

// `outer` is `inner` or one of its parent directories (both resolved).
bool holds(const std::filesystem::path& outer, const std::filesystem::path& inner);

// Code::bad_manifest (`code` for a command-line flag) naming `what` (e.g. "report") when `path`
// would be written over a name tensorinit owns in `shm_dir` or into a local weight source of
// `manifest`. Empty paths pass (nothing is written).
Status check_output_path(std::string_view what, const std::string& path, const manifest::Manifest& manifest,
                         const std::string& shm_dir, Code code = Code::bad_manifest);

}  // namespace tensorinit::app
