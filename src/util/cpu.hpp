// How many cores this container may actually use.
#pragma once

namespace tensorinit {

// min(CPUs in our affinity mask, ceil(cgroup v2 cpu.max quota / period)), at least 1.
unsigned usable_cores();

// Parses a cgroup v2 cpu.max line ("max 100000" or "150000 100000"); 0 when unlimited/malformed.
unsigned cores_from_cpu_max(const char* text);

}  // namespace tensorinit
