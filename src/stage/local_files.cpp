#include "stage/local_files.hpp"

#include <fmt/format.h>

#include "util/log.hpp"

namespace tensorinit::stage {
namespace {

using manifest::DirectIo;
using manifest::Target;

// O_DIRECT for cold files; buffered for files already in the page cache (a direct read would
// go to the device again) and for pagecache targets (filling the cache is the point).
bool want_direct(const io::FileSource& file, DirectIo mode, Target target) {
  if (mode == DirectIo::off || target == Target::pagecache) return false;
  if (mode == DirectIo::on) return true;
  return file.resident_fraction() < 0.5;
}

Error changed(const std::string& path, const Error& e) {
  return Error{Code::bad_data, fmt::format("{}; the weights were not staged from it (nothing published): retry once "
                                           "{} is no longer being replaced or rewritten", e.message, path)};
}

}  // namespace

Result<std::vector<io::FileSource*>> prepare_local_files(const format::ModelIndex& index, const manifest::Stage& stage,
                                                         Target target, bool& any_direct) {
  std::vector<io::FileSource*> files;
  for (const auto& f : index.files) {
    if (!f.source) return fail(Code::internal, fmt::format("{}: indexed without its descriptor", f.path));
    io::FileSource& source = *f.source;
    if (auto ok = source.check_unchanged(); !ok) return std::unexpected(changed(f.path, ok.error()));
    if (want_direct(source, stage.direct_io, target)) {
      if (source.enable_direct()) any_direct = true;
      else if (stage.direct_io == DirectIo::on)
        log::warn(fmt::format("{}: O_DIRECT refused by the filesystem; reading buffered", f.path));
    }
    files.push_back(&source);
  }
  return files;
}

Status check_files_unchanged(std::span<io::FileSource* const> files, Target target) {
  for (const io::FileSource* f : files) {
    if (auto ok = f->check_unchanged(); !ok) return std::unexpected(changed(f->name(), ok.error()));
    if (target == Target::pagecache)
      if (auto ok = f->check_path(); !ok) return std::unexpected(changed(f->name(), ok.error()));
  }
  return {};
}

Status check_pagecache_can_serve(const format::ModelIndex& index) {
  constexpr const char* kFix = "use target host or cuda (tensorinit then stages the tensors itself)";
  for (const auto& f : index.files)
    if (f.packed)
      return fail(Code::no_source, fmt::format("{}: stage.target pagecache cannot serve a packed file (the server would "
                                               "read compressed bytes); {}, or unpack it with zstd -d", f.path, kFix));
  for (const auto& t : index.tensors) {
    if (t.bytes == 0) continue;
    const std::string& path = index.files.at(t.file).path;
    if (t.zeros)
      return fail(Code::no_source, fmt::format("{}: stage.target pagecache cannot serve tensor '{}': a tensorizer meta "
                                               "tensor has no bytes in the file (it loads as zeros); {}", path, t.name, kFix));
    if (t.encrypted)
      return fail(Code::no_source, fmt::format("{}: stage.target pagecache cannot serve an encrypted tensorizer file "
                                               "(tensor '{}': the server would read ciphertext); {}", path, t.name, kFix));
  }
  return {};
}

}  // namespace tensorinit::stage
