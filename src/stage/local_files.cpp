#include "stage/local_files.hpp"

#include <fmt/format.h>

#include "util/log.hpp"

namespace tensorinit::stage {
namespace {

// O_DIRECT for cold files; buffered for files already in the page cache (a direct read would
// go to the device again).
bool want_direct(const io::FileSource& file, std::optional<bool> direct_io) {
  if (direct_io) return *direct_io;
  return file.resident_fraction() < 0.5;
}

Error changed(const std::string& path, const Error& e) {
  return Error{Code::bad_data, fmt::format("{}; the weights were not staged from it (nothing published): retry once "
                                           "{} is no longer being replaced or rewritten", e.message, path)};
}

}  // namespace

Result<std::vector<io::FileSource*>> prepare_local_files(const format::ModelIndex& index, std::optional<bool> direct_io,
                                                         bool may_bypass_cache, bool& any_direct) {
  std::vector<io::FileSource*> files;
  for (const auto& f : index.files) {
    if (!f.source) return fail(Code::internal, fmt::format("{}: indexed without its descriptor", f.path));
    io::FileSource& source = *f.source;
    if (auto ok = source.check_unchanged(); !ok) return std::unexpected(changed(f.path, ok.error()));
    if (may_bypass_cache && want_direct(source, direct_io)) {
      if (source.enable_direct()) any_direct = true;
      else if (direct_io == true)
        log::warn(fmt::format("{}: O_DIRECT refused by the filesystem; reading buffered", f.path));
    }
    files.push_back(&source);
  }
  return files;
}

Status check_files_unchanged(std::span<io::FileSource* const> files, bool check_paths) {
  for (const io::FileSource* f : files) {
    if (auto ok = f->check_unchanged(); !ok) return std::unexpected(changed(f->name(), ok.error()));
    if (check_paths)
      if (auto ok = f->check_path(); !ok) return std::unexpected(changed(f->name(), ok.error()));
  }
  return {};
}

}  // namespace tensorinit::stage
