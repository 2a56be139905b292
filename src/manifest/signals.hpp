// Signal names as users write them in handoff.signal: "SIGUSR1", "USR1", "sigusr1", "SIGRTMIN+3",
// "RTMAX-1" or a number.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace tensorinit::manifest {

// The signal number, or nullopt for an unknown name or a number outside 1..SIGRTMAX.
std::optional<int> parse_signal(std::string_view text);

// "SIGUSR1", "SIGRTMIN+3", or the number as text when it has no name.
std::string signal_name(int signal);

}  // namespace tensorinit::manifest
