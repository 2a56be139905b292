#include "util/units.hpp"

#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <utility>

namespace tensorinit {
namespace {

// Splits "12.5GiB" into 12.5 and "GiB"; rejects signs, blanks inside and empty numbers.
std::optional<std::pair<double, std::string_view>> split_number(std::string_view text) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  size_t i = 0;
  while (i < text.size() && ((text[i] >= '0' && text[i] <= '9') || text[i] == '.')) ++i;
  if (i == 0) return std::nullopt;
  double value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + i, value);
  if (ec != std::errc() || end != text.data() + i || !std::isfinite(value)) return std::nullopt;
  std::string_view unit = text.substr(i);
  while (!unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
  return std::pair{value, unit};
}

}  // namespace

// Exact decimal arithmetic: through a double, "1.1KB" came out as 1100.0000000000002 bytes (and was
// refused as fractional) and integers above 2^53 lost their low bits.
std::optional<uint64_t> parse_size(std::string_view text) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  __extension__ typedef unsigned __int128 u128;
  u128 mantissa = 0;
  size_t i = 0, int_digits = 0, frac_digits = 0;
  for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i, ++int_digits) {
    if (int_digits == 20) return std::nullopt;  // beyond any uint64_t
    mantissa = mantissa * 10 + static_cast<unsigned>(text[i] - '0');
  }
  if (i < text.size() && text[i] == '.') {
    ++i;
    std::string_view fraction = text.substr(i);
    size_t n = 0;
    while (n < fraction.size() && fraction[n] >= '0' && fraction[n] <= '9') ++n;
    i += n;
    fraction = fraction.substr(0, n);
    while (!fraction.empty() && fraction.back() == '0') fraction.remove_suffix(1);
    if (n == 0 && int_digits == 0) return std::nullopt;
    if (fraction.size() > 18) return std::nullopt;  // finer than any unit can make whole bytes
    for (char c : fraction) mantissa = mantissa * 10 + static_cast<unsigned>(c - '0');
    frac_digits = fraction.size();
  }
  if (i == 0) return std::nullopt;
  std::string_view unit = text.substr(i);
  while (!unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
  static constexpr std::array<std::pair<std::string_view, uint64_t>, 10> units{{
      {"", 1},
      {"B", 1},
      {"KiB", 1ull << 10},
      {"MiB", 1ull << 20},
      {"GiB", 1ull << 30},
      {"TiB", 1ull << 40},
      {"KB", 1000ull},
      {"MB", 1000000ull},
      {"GB", 1000000000ull},
      {"TB", 1000000000000ull},
  }};
  for (auto [name, factor] : units) {
    if (unit != name) continue;
    u128 scale = 1;
    for (size_t k = 0; k < frac_digits; ++k) scale *= 10;
    if (mantissa > ~u128{0} / factor) return std::nullopt;
    u128 scaled = mantissa * factor;
    if (scaled % scale != 0) return std::nullopt;  // "1.5B" is not a size
    u128 bytes = scaled / scale;
    if (bytes > UINT64_MAX) return std::nullopt;
    return static_cast<uint64_t>(bytes);
  }
  return std::nullopt;
}

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
  auto parts = split_number(text);
  if (!parts) return std::nullopt;
  auto [value, unit] = *parts;
  double ms = 0;
  if (unit == "ms") ms = value;
  else if (unit == "s" || unit.empty()) ms = value * 1e3;
  else if (unit == "m") ms = value * 60e3;
  else return std::nullopt;
  if (ms > 1e15) return std::nullopt;
  return std::chrono::milliseconds(static_cast<int64_t>(std::llround(ms)));
}

std::string format_bytes(uint64_t bytes) {
  static constexpr std::array<const char*, 5> names{"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  size_t i = 0;
  while (v >= 1024 && i + 1 < names.size()) {
    v /= 1024;
    ++i;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, i == 0 ? "%.0f %s" : "%.2f %s", v, names[i]);
  return buf;
}

}  // namespace tensorinit
