// Names looked up among many (tensor names: hundreds of thousands in a large mixture of experts)
// in linear time, with one allocation per table. std::set<std::string> copies every name and
// std::unordered_set allocates a node per name: measured here on 500,000 names, either was 10% of
// a whole load. This is open addressing over indices; a slot holds the index and 32 bits of the
// name's hash, so a probe costs one cache miss and names are compared only when those bits agree.
// The hash is keyed with random bytes drawn once per process (name_hash): names come from files an
// attacker may write, and with a public hash (std::hash is MurmurHash64A with a fixed seed) names
// built to share slots would make every insert walk all earlier ones: 500,000 of them, hours of
// CPU with no stop check in the loop.
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace tensorinit {

// XXH3 keyed with a 192-byte secret from getrandom(2), drawn at the first call. Thread-safe.
uint64_t name_hash(std::string_view name);

// A set of indices 0..capacity-1 keyed by their names; the names stay with the caller, who gives
// `name_of(i)` (a string_view valid during each call). Not thread-safe; distinct tables are.
class NameTable {
 public:
  explicit NameTable(size_t capacity) : mask_(std::bit_ceil(std::max<size_t>(capacity, 1) * 2) - 1), slots_(mask_ + 1, 0) {}

  // Records index `i` under `name`, unless an index with an equal name is there: then that index,
  // and nothing is recorded. At most `capacity` indices, each below 2^32 - 1.
  template <typename NameOf>
  std::optional<size_t> insert(size_t i, std::string_view name, NameOf&& name_of) {
    return insert_hashed(i, name, name_hash(name), name_of);
  }
  // insert() with `h` = name_hash(name), computed ahead.
  template <typename NameOf>
  std::optional<size_t> insert_hashed(size_t i, std::string_view name, uint64_t h, NameOf&& name_of) {
    size_t at = h & mask_;
    for (;; at = (at + 1) & mask_) {
      const uint64_t slot = slots_[at];
      if (slot == 0) break;
      if ((slot >> 32) == (h >> 32) && name_of(index_of(slot)) == name) return index_of(slot);
    }
    slots_[at] = (h >> 32 << 32) | (static_cast<uint64_t>(i) + 1);
    return std::nullopt;
  }

  // Brings the slot a name of hash `h` starts at into the cache (a hint: changes nothing).
  void prefetch(uint64_t h) const { __builtin_prefetch(&slots_[h & mask_]); }

  // The index recorded under `name`, or nullopt.
  template <typename NameOf>
  std::optional<size_t> find(std::string_view name, NameOf&& name_of) const {
    const uint64_t h = name_hash(name);
    for (size_t at = h & mask_;; at = (at + 1) & mask_) {
      const uint64_t slot = slots_[at];
      if (slot == 0) return std::nullopt;
      if ((slot >> 32) == (h >> 32) && name_of(index_of(slot)) == name) return index_of(slot);
    }
  }

 private:
  static size_t index_of(uint64_t slot) { return static_cast<size_t>((slot & 0xffff'ffffu) - 1); }

  size_t mask_;
  std::vector<uint64_t> slots_;  // 0: empty; else hash's high 32 bits | index + 1
};

// The index of the first name (in order 0..count-1) equal to an earlier one, or nullopt.
// `name_of(i)` gives name i as a string_view that stays valid during the call. Thread-safe for
// distinct calls.
template <typename NameOf>
std::optional<size_t> first_duplicate(size_t count, NameOf&& name_of) {
  if (count < 2) return std::nullopt;
  NameTable table(count);
  // Hashed kAhead names ahead and their slots prefetched: the slot's cache miss was 75% of this
  // loop (perf, 100,000 names; the table is 2 MiB), now it overlaps the hashing of later names.
  constexpr size_t kAhead = 8;
  uint64_t ahead[kAhead];
  for (size_t i = 0; i < std::min(count, kAhead); ++i) table.prefetch(ahead[i] = name_hash(name_of(i)));
  for (size_t i = 0; i < count; ++i) {
    const uint64_t h = ahead[i % kAhead];
    if (i + kAhead < count) table.prefetch(ahead[i % kAhead] = name_hash(name_of(i + kAhead)));
    if (table.insert_hashed(i, name_of(i), h, name_of)) return i;
  }
  return std::nullopt;
}

}  // namespace tensorinit
