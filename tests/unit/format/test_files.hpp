// Test support for format tests: a private temp directory (mkdtemp, removed on scope exit), file
// writing, raw safetensors bytes built by hand (so malformed headers are easy to state), and
// SHA-256 through coreutils' sha256sum (an independent implementation, not ours).
#pragma once

#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <string_view>

namespace tensorinit::testing {

class TempDir {
 public:
  TempDir() {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/tensorinit-format-test-XXXXXX";
    if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed: " + pattern);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string operator/(std::string_view name) const { return path_ + "/" + std::string(name); }

 private:
  std::string path_;
};

inline void write_file(const std::string& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path);
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// `u64 N | header | data`, N = header.size(): nothing padded or checked, so tests can lie freely.
inline std::string raw_safetensors(std::string_view header, std::string_view data = {}) {
  std::string out(8, '\0');
  const uint64_t n = header.size();
  std::memcpy(out.data(), &n, 8);
  out.append(header);
  out.append(data);
  return out;
}

// The same with an arbitrary N (for oversized or lying lengths).
inline std::string with_header_length(uint64_t n, std::string_view rest) {
  std::string out(8, '\0');
  std::memcpy(out.data(), &n, 8);
  out.append(rest);
  return out;
}

// Lower-case hex SHA-256 of `bytes`, computed by `sha256sum` on a file in `dir`.
inline std::string sha256sum(const TempDir& dir, std::string_view bytes) {
  const std::string path = dir / "sha256-input";
  write_file(path, bytes);
  const std::string command = "sha256sum '" + path + "'";
  FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) throw std::runtime_error("cannot run sha256sum");
  std::array<char, 65> hex{};
  const size_t got = std::fread(hex.data(), 1, 64, pipe);
  const int status = ::pclose(pipe);
  if (got != 64 || status != 0) throw std::runtime_error("sha256sum failed");
  return std::string(hex.data(), 64);
}

}  // namespace tensorinit::testing
