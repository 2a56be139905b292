#include "format/packed_transform.hpp"

#include <cstring>

namespace tensorinit::format {
namespace {

// Fixed K so that the element loops vectorize.
template <unsigned K>
void split_fixed(const std::byte* in, size_t n, std::byte* out) {
  const size_t m = n / K;
  for (size_t j = 0; j < m; ++j)
    for (unsigned p = 0; p < K; ++p) out[p * m + j] = in[j * K + p];
  std::memcpy(out + m * K, in + m * K, n - m * K);
}

template <unsigned K>
void join_fixed(const std::byte* planes, size_t n, size_t from, std::byte* out, size_t len) {
  const size_t m = n / K;
  const size_t body_end = m * K;
  size_t q = from;
  const size_t end = from + len;
  // Head: up to the first whole element.
  for (; q < end && q < body_end && q % K != 0; ++q) out[q - from] = planes[(q % K) * m + q / K];
  // Whole elements.
  const size_t first = q / K;
  const size_t last = std::min(end, body_end) / K;
  if (q < body_end && first < last) {
    std::byte* o = out + (q - from);
    for (size_t j = first; j < last; ++j)
      for (unsigned p = 0; p < K; ++p) o[(j - first) * K + p] = planes[p * m + j];
    q = last * K;
  }
  // Tail of the element range, then the bytes after it (kept as they are).
  for (; q < end && q < body_end; ++q) out[q - from] = planes[(q % K) * m + q / K];
  if (q < end) std::memcpy(out + (q - from), planes + q, end - q);
}

}  // namespace

void split_planes(std::span<const std::byte> in, unsigned k, std::span<std::byte> out) {
  if (k == 4) return split_fixed<4>(in.data(), in.size(), out.data());
  split_fixed<2>(in.data(), in.size(), out.data());
}

void join_planes(std::span<const std::byte> planes, unsigned k, uint64_t from, std::span<std::byte> out) {
  if (k == 4) return join_fixed<4>(planes.data(), planes.size(), from, out.data(), out.size());
  join_fixed<2>(planes.data(), planes.size(), from, out.data(), out.size());
}

}  // namespace tensorinit::format
