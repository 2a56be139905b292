#include "util/cpu.hpp"

#include <sched.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

namespace tensorinit {

unsigned cores_from_cpu_max(const char* text) {
  char quota[32] = {};
  unsigned long period = 0;
  if (std::sscanf(text, "%31s %lu", quota, &period) != 2 || period == 0) return 0;
  if (std::string(quota) == "max") return 0;
  char* end = nullptr;
  unsigned long q = std::strtoul(quota, &end, 10);
  if (*end != '\0' || q == 0) return 0;
  return static_cast<unsigned>((q + period - 1) / period);
}

unsigned usable_cores() {
  unsigned cores = 1;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) cores = static_cast<unsigned>(CPU_COUNT(&set));
  // cgroup v2: our own cgroup's cpu.max (inside a container this is the container's cgroup root).
  std::ifstream cg("/proc/self/cgroup");
  std::string line, path = "/";
  while (std::getline(cg, line))
    if (line.rfind("0::", 0) == 0) path = line.substr(3);
  for (std::string dir = "/sys/fs/cgroup" + (path == "/" ? "" : path);; dir = dir.substr(0, dir.rfind('/'))) {
    std::ifstream in(dir + "/cpu.max");
    std::string text;
    if (in && std::getline(in, text)) {
      unsigned quota = cores_from_cpu_max(text.c_str());
      if (quota > 0 && quota < cores) cores = quota;
    }
    if (dir == "/sys/fs/cgroup" || dir.size() <= 14) break;
  }
  return cores > 0 ? cores : 1;
}

}  // namespace tensorinit
