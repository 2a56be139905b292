// Byte planes: a frame's bytes regrouped by their position in a k-byte element (k = 2 for
// bf16/f16, 4 for f32): byte 0 of every element, then byte 1 of every element, and so on; the
// last n % k bytes stay as they are at the end. The sign/exponent bytes of trained weights repeat
// a few values, the mantissa bytes look random: apart, zstd's entropy coder sees each on its own.
// A pure permutation, so any bytes round-trip whatever they hold.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace tensorinit::format {

// `out` (in.size() bytes) receives the planes of `in`. k is 2 or 4.
void split_planes(std::span<const std::byte> in, unsigned k, std::span<std::byte> out);

// `out` receives bytes [from, from + out.size()) of the original frame whose planes are `planes`
// (the whole frame). k is 2 or 4.
void join_planes(std::span<const std::byte> planes, unsigned k, uint64_t from, std::span<std::byte> out);

}  // namespace tensorinit::format
