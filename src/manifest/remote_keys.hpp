// The keys of a remote (s3, http) source entry, for parse.cpp. Throws Failure (via Fields) on a
// bad key or value. Not thread-safe (one Fields per parse).
#pragma once

#include <string>
#include <string_view>

#include "manifest/fields.hpp"
#include "manifest/manifest.hpp"

namespace tensorinit::manifest {

// Whether entries of `type` take `key` (its row's keys).
bool takes_key(const SourceTypeInfo& type, std::string_view key);

// One key `name` of the remote entry `source` (its type already set): refused unless the type's row
// (util/source_type.hpp) lists it; the url checked against the row's schemes and rules.
void parse_remote_key(const Fields& f, Source& source, const std::string& name, const Field& field);

}  // namespace tensorinit::manifest
