// Logs go to stderr only: stdout belongs to the child.
#pragma once

#include <string_view>

namespace tensorinit::log {

void info(std::string_view message);   // "tensorinit: message"
void warn(std::string_view message);   // "tensorinit: warning: message"
void error(std::string_view message);  // "tensorinit: error: message"
void set_quiet(bool quiet);            // drops info lines (errors and warnings stay)

}  // namespace tensorinit::log
