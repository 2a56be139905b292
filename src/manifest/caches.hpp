// The `caches:` list of the manifest (contract "caches"), and the pieces of parse.cpp it shares.
// Throws Failure (via Fields) on a bad key or value. Not thread-safe (one Fields per parse).
#pragma once

#include <string_view>
#include <vector>

#include "manifest/fields.hpp"
#include "manifest/manifest.hpp"

namespace tensorinit::manifest {

// [a-z0-9._-]+, 1 to 64 characters, not "." or "..": the name becomes a file name (parse.cpp).
bool valid_model_name(std::string_view name);
// One entry of model.sources (or of a cache's sources): type and path or url (parse.cpp).
Source parse_source(const Fields& f, const Field& entry);

// caches: a list of {name, path, sources, save, max_size}; names unique, paths absolute and
// distinct, neither nested in the other.
std::vector<Cache> parse_caches(const Fields& f, const Field& list);

}  // namespace tensorinit::manifest
