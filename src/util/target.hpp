// Where staged tensors go: the one list of targets, shared by the manifest (stage.target, parsed in
// manifest/parse.cpp) and stage/ (one Destination each, stage/destination.cpp), as
// util/weight_format.hpp is for formats. A leaf, so that manifest/ and stage/ name one enum
// without depending on each other: manifest::Target and stage::Target are this type.
// Adding a target: its value and word here, and its Destination in stage/destination.cpp.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>
#include <utility>

namespace tensorinit {

// automatic: cuda when CUDA is usable, else host (stage resolves it). discard: read, verify, keep
// nothing (a benchmark of the reads; the manifest allows it only with handoff.mode none).
enum class Target : uint8_t { host, pagecache, cuda, automatic, discard };

// The manifest's words, in the order error messages list them.
inline constexpr std::array<std::pair<std::string_view, Target>, 5> kTargetWords{{
    {"host", Target::host},
    {"pagecache", Target::pagecache},
    {"cuda", Target::cuda},
    {"auto", Target::automatic},
    {"discard", Target::discard},
}};

// The word of a target ("auto" for automatic), NUL-terminated. Thread-safe.
constexpr const char* to_string(Target target) {
  for (const auto& [word, value] : kTargetWords)
    if (value == target) return word.data();
  return "?";
}

}  // namespace tensorinit
