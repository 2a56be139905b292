#include "format/dtype.hpp"

#include <array>
#include <utility>

namespace tensorinit::format {

std::optional<uint32_t> dtype_bits(std::string_view dtype) {
  // The common ones first: a 500,000-tensor header looks each one up (5% of a `plan` when F32
  // came 18th).
  static constexpr std::array<std::pair<std::string_view, uint32_t>, 22> table{{
      {"BF16", 16},       {"F32", 32},        {"F16", 16},        {"F8_E4M3", 8},
      {"I64", 64},        {"U8", 8},          {"I32", 32},        {"F64", 64},
      {"BOOL", 8},        {"I8", 8},          {"F8_E5M2", 8},     {"F8_E8M0", 8},
      {"F8_E4M3FNUZ", 8}, {"F8_E5M2FNUZ", 8}, {"F4", 4},          {"F6_E2M3", 6},
      {"F6_E3M2", 6},     {"I16", 16},        {"U16", 16},        {"U32", 32},
      {"C64", 64},        {"U64", 64},
  }};
  for (auto [name, bits] : table)
    if (name == dtype) return bits;
  return std::nullopt;
}

}  // namespace tensorinit::format
