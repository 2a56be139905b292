// A private directory for one test, removed with everything in it. `pattern` ends in XXXXXX
// (mkdtemp); under /dev/shm for what must live on tmpfs.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <string>

namespace tensorinit::testing {

struct TempDir {
  std::filesystem::path path;
  explicit TempDir(std::string pattern = "/tmp/tensorinit-test-XXXXXX") {
    if (::mkdtemp(pattern.data()) != nullptr) path = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    if (!path.empty()) std::filesystem::remove_all(path, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

}  // namespace tensorinit::testing
