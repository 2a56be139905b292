#include "app/output_paths.hpp"

#include <algorithm>
#include <fmt/format.h>

#include "util/redact.hpp"

namespace tensorinit::app {

std::filesystem::path resolved(const std::string& path) {
  std::error_code ec;
  std::filesystem::path p = std::filesystem::weakly_canonical(path, ec);
  p = (ec ? std::filesystem::path(path) : p).lexically_normal();
  return p.has_filename() || p == p.root_path() ? p : p.parent_path();
}

bool holds(const std::filesystem::path& outer, const std::filesystem::path& inner) {
  return std::mismatch(outer.begin(), outer.end(), inner.begin(), inner.end()).first == outer.end();
}

Status check_output_path(std::string_view what, const std::string& path, const manifest::Manifest& manifest,
                         const std::string& shm_dir, Code code) {
  if (path.empty()) return {};
  // The file is renamed into its directory: resolve the directory, keep the name (a symlink at
  // the name itself is replaced, never followed).
  const std::filesystem::path given(path);
  const std::filesystem::path target = resolved(given.has_parent_path() ? given.parent_path().string() : ".") /
                                       given.filename();
  const std::string name = target.filename().string();
  const auto refuse = [&](const std::string& why) {
    const std::string where = code == Code::bad_manifest ? manifest.file + ": " : "";
    return fail(code, fmt::format("{}{} '{}' {}: give it a path of its own (e.g. /run/tensorinit/report.json)", where,
                                  what, printable(path), why));
  };
  if (target.parent_path() == resolved(shm_dir) && (name.starts_with("tensorinit-") || name.starts_with(".tensorinit-")))
    return refuse(fmt::format("is a name tensorinit uses in {} (arenas, tensor tables, sockets and locks of every "
                              "model there): writing it would replace one", shm_dir));
  for (const auto& source : manifest.model.sources) {
    if (is_remote(source.type)) continue;  // local rows of util/source_type.hpp: a path
    if (holds(resolved(source.path), target))
      return refuse(fmt::format("lies in the weight source {}: writing it could replace or add a weight file",
                                printable(source.path)));
  }
  return {};
}

}  // namespace tensorinit::app
