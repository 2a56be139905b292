// The keys of a remote (s3, http) source entry, for parse.cpp. Throws Failure (via Fields) on a
// bad key or value. Not thread-safe (one Fields per parse).
#pragma once

#include <string>

#include "manifest/fields.hpp"
#include "manifest/manifest.hpp"

namespace tensorinit::manifest {

// One key `name` of the remote entry `source` (its type already set).
void parse_remote_key(const Fields& f, Source& source, const std::string& name, const Field& field);

}  // namespace tensorinit::manifest
