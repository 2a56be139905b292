// A private directory for one test, removed with everything in it. `pattern` ends in XXXXXX
// (mkdtemp); under /dev/shm for what must live on tmpfs. (Not named TempDir: format/test_files.hpp
// has a TempDir in this namespace, and two inline classes of one name break the link, ODR.)
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

namespace tensorinit::testing {

struct ScratchDir {
  std::filesystem::path path;
  explicit ScratchDir(std::string pattern = "/tmp/tensorinit-test-XXXXXX") {
    if (::mkdtemp(pattern.data()) != nullptr) path = pattern;
  }
  ~ScratchDir() {
    std::error_code ignored;
    if (!path.empty()) std::filesystem::remove_all(path, ignored);
  }
  std::string operator/(const char* name) const { return (path / name).string(); }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
};

// A ScratchDir on tmpfs, where arenas, name locks and ready sockets live.
struct ShmDir : ScratchDir {
  ShmDir() : ScratchDir("/dev/shm/tensorinit-test-XXXXXX") {}
};

// The whole file as text ("" when it cannot be read).
inline std::string slurp(const std::string& file) {
  std::ifstream in(file);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace tensorinit::testing
