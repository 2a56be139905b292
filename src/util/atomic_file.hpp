// Files that readers trust (the tensor table, the report) appear whole or not at all.
#pragma once

#include <string>
#include <string_view>

#include "util/error.hpp"

namespace tensorinit {

// Writes to a temporary name in the same directory (created if missing), fsyncs, renames.
Status write_file_atomically(const std::string& path, std::string_view content);

}  // namespace tensorinit
