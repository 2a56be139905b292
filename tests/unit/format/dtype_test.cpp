// The dtype vocabulary of formats.md, with bit widths; names are case-sensitive.
#include <doctest/doctest.h>

#include "format/dtype.hpp"

using tensorinit::format::dtype_bits;

TEST_CASE("format: dtype_bits covers the formats.md vocabulary") {
  for (auto name : {"BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0", "F8_E4M3FNUZ", "F8_E5M2FNUZ"})
    CHECK(dtype_bits(name) == 8u);
  CHECK(dtype_bits("F4") == 4u);
  CHECK(dtype_bits("F6_E2M3") == 6u);
  CHECK(dtype_bits("F6_E3M2") == 6u);
  for (auto name : {"I16", "U16", "F16", "BF16"}) CHECK(dtype_bits(name) == 16u);
  for (auto name : {"I32", "U32", "F32"}) CHECK(dtype_bits(name) == 32u);
  for (auto name : {"C64", "F64", "I64", "U64"}) CHECK(dtype_bits(name) == 64u);
}

TEST_CASE("format: dtype_bits refuses names outside the vocabulary") {
  for (auto name : {"", "f16", "FP16", "F16 ", "float16", "F8", "C128"}) CHECK_FALSE(dtype_bits(name).has_value());
}
