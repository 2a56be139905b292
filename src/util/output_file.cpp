#include "util/output_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fmt/format.h>

#include "util/atomic_file.hpp"

namespace tensorinit {

OutputFile::OutputFile(std::string path) : path_(std::move(path)) {
  if (path_.empty()) return;
  namespace fs = std::filesystem;
  const fs::path p(path_);
  name_ = p.filename().string();
  const fs::path dir = p.has_parent_path() ? p.parent_path() : fs::path(".");
  std::error_code ec;
  fs::create_directories(dir, ec);
  dir_.reset(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir_) open_errno_ = errno;
}

Status OutputFile::write(std::string_view content) const {
  if (path_.empty()) return {};
  if (!dir_) return fail(Code::io, fmt::format("{}: cannot write: {}", path_, std::strerror(open_errno_)));
  return write_file_atomically_at(dir_.get(), name_, path_, content);
}

void OutputFile::remove() const {
  if (dir_ && !name_.empty()) ::unlinkat(dir_.get(), name_.c_str(), 0);
}

}  // namespace tensorinit
