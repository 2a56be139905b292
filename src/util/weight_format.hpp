// The weight formats by name: the one vocabulary the manifest (model.format), the format table
// (format/formats.hpp), inspect and reports share. A leaf, so that manifest/ and format/ name one
// enum without depending on each other: manifest::Format and format::Format are this type.
// Adding a format: its value and word here, its row in format/formats.cpp, and its reader (3 files:
// a new format/<name>.cpp whose entry point formats.cpp declares beside the row; see there).
#pragma once

#include <array>
#include <cstdint>
#include <string_view>
#include <utility>

namespace tensorinit {

// `automatic` is a request only ("decide per file"); what a file or a model index is never is.
enum class WeightFormat : uint8_t { automatic, safetensors, tensorizer, packed };

// The manifest's words, in the order error messages list them.
inline constexpr std::array<std::pair<std::string_view, WeightFormat>, 4> kWeightFormatWords{{
    {"auto", WeightFormat::automatic},
    {"safetensors", WeightFormat::safetensors},
    {"tensorizer", WeightFormat::tensorizer},
    {"packed", WeightFormat::packed},
}};

// The word of a format ("auto" for automatic). Thread-safe.
constexpr std::string_view weight_format_name(WeightFormat format) {
  for (const auto& [word, value] : kWeightFormatWords)
    if (value == format) return word;
  return "?";
}

}  // namespace tensorinit
