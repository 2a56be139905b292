// Large buffers that grow with the tensors, faulted in 2 MiB at a time.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <cstdint>

namespace tensorinit {

// Asks for transparent huge pages on the 2 MiB-aligned part of [data, data + bytes) before it is
// first written: one page fault (and one memory-cgroup charge) per 2 MiB instead of per 4 KiB.
// Measured here, a fault cost about 2 us: a third of the CPU of indexing 100,000 tensors (8,500
// faults for the header text, the entries and the table). A hint on memory the caller owns
// (malloc'd: glibc's large blocks are mappings of their own); without THP (`never`), nothing
// changes. Pages past what is written stay untouched. Thread-safe.
inline void advise_huge_pages(const void* data, size_t bytes) {
  constexpr uintptr_t huge = uintptr_t{2} << 20;
  const auto begin = (reinterpret_cast<uintptr_t>(data) + huge - 1) & ~(huge - 1);
  const auto end = (reinterpret_cast<uintptr_t>(data) + bytes) & ~(huge - 1);
  if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
}

}  // namespace tensorinit
