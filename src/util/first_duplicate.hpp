// Finding a repeated name among many (tensor names: hundreds of thousands in a large mixture of
// experts) in linear time, with two allocations in all. std::set<std::string> copies every name
// and std::unordered_set allocates a node per name: measured here on 500,000 names, either was
// 10% of a whole load; this open-addressing table of indices is a few times cheaper.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string_view>
#include <vector>

namespace tensorinit {

// The index of the first name (in order 0..count-1) equal to an earlier one, or nullopt.
// `name_of(i)` gives name i as a string_view that stays valid during the call. Thread-safe for
// distinct calls.
template <typename NameOf>
std::optional<size_t> first_duplicate(size_t count, NameOf&& name_of) {
  if (count < 2) return std::nullopt;
  const size_t slots = std::bit_ceil(count * 2);
  constexpr size_t kEmpty = SIZE_MAX;
  std::vector<size_t> table(slots, kEmpty);
  std::vector<size_t> hashes(count);
  const std::hash<std::string_view> hash;
  for (size_t i = 0; i < count; ++i) {
    const std::string_view name = name_of(i);
    hashes[i] = hash(name);
    for (size_t at = hashes[i] & (slots - 1);; at = (at + 1) & (slots - 1)) {
      const size_t other = table[at];
      if (other == kEmpty) {
        table[at] = i;
        break;
      }
      if (hashes[other] == hashes[i] && name_of(other) == name) return i;
    }
  }
  return std::nullopt;
}

}  // namespace tensorinit
