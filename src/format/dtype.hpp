// The safetensors dtype vocabulary and element sizes in bits (sub-byte types included).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace tensorinit::format {

// Bits per element, or nullopt for a name outside the vocabulary.
std::optional<uint32_t> dtype_bits(std::string_view dtype);

}  // namespace tensorinit::format
