// Sizes ("16MiB", "1GB") and durations ("10s", "250ms", "2m") as the contract spells them.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tensorinit {

// Returns nullopt for anything malformed, negative or overflowing. A bare number is bytes.
std::optional<uint64_t> parse_size(std::string_view text);
// Returns nullopt for anything malformed. A bare number is seconds.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);

// "1.50 GiB" style, for humans.
std::string format_bytes(uint64_t bytes);

}  // namespace tensorinit
