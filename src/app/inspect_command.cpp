// `tensorinit inspect [--json] PATH`: the tensors of a file or model directory.
#include <cstdio>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "app/commands.hpp"
#include "format/model_files.hpp"
#include "util/units.hpp"

namespace tensorinit::app {
namespace {

constexpr const char* kHelp = R"(usage: tensorinit inspect [--json] PATH

Lists the tensors of a safetensors file or a model directory (sharded with
model.safetensors.index.json, or every *.safetensors in it): name, dtype, shape,
file, offset, bytes; then the totals. Tensorizer files (*.tensors) and packed files
(*.zst, written by `tensorinit pack`; offsets are in the decoded bytes) too.
Malformed files exit 65.
)";

std::string shape_text(const format::Shape& shape) { return fmt::format("[{}]", fmt::join(shape, ", ")); }

void print_json(const format::ModelIndex& index) {
  nlohmann::json out = {{"format", weight_format_name(index.format)}, {"dir", index.dir}};
  nlohmann::json files = nlohmann::json::array();
  for (const auto& f : index.files) {
    nlohmann::json file = {{"path", f.path}, {"bytes", f.size}};
    if (f.packed) file["packed"] = {{"compressed_bytes", f.stored_size}, {"frame_bytes", f.frame_bytes}};
    files.push_back(std::move(file));
  }
  nlohmann::json tensors = nlohmann::json::array();
  for (const auto& t : index.tensors)
    tensors.push_back({{"name", t.name}, {"dtype", t.dtype}, {"shape", t.shape}, {"file", index.files[t.file].path},
                       {"offset", t.file_offset}, {"bytes", t.bytes}});
  out["files"] = std::move(files);
  out["tensors"] = std::move(tensors);
  out["total"] = {{"files", index.files.size()}, {"tensors", index.tensors.size()}, {"bytes", index.tensor_bytes()}};
  std::puts(out.dump(2).c_str());
}

void print_table(const format::ModelIndex& index) {
  fmt::print("{:<48} {:<8} {:<20} {:>12} {:>14}  {}\n", "name", "dtype", "shape", "offset", "bytes", "file");
  for (const auto& t : index.tensors)
    fmt::print("{:<48} {:<8} {:<20} {:>12} {:>14}  {}\n", t.name, t.dtype, shape_text(t.shape), t.file_offset,
               t.bytes, index.files[t.file].path);
  fmt::print("total: {} tensors, {} bytes ({}) in {} file(s)\n", index.tensors.size(), index.tensor_bytes(),
             format_bytes(index.tensor_bytes()), index.files.size());
  for (const auto& f : index.files)
    if (f.packed)
      fmt::print("packed: {}: {} decoded from {} (x{:.3f}), frames of {}\n", f.path, format_bytes(f.size),
                 format_bytes(f.stored_size), static_cast<double>(f.size) / static_cast<double>(std::max<uint64_t>(1, f.stored_size)),
                 f.frame_bytes ? format_bytes(f.frame_bytes) : std::string("varying size"));
}

}  // namespace

Result<int> run_inspect(Args& args) {
  if (args.flag("--help") || args.flag("-h")) return std::fputs(kHelp, stdout), 0;
  const bool json = args.flag("--json");
  auto paths = args.positionals(1, 1);
  if (!paths) return std::unexpected(paths.error());
  auto index = format::index_local_model(paths->front(), manifest::Format::automatic);
  if (!index) return std::unexpected(index.error());
  json ? print_json(*index) : print_table(*index);
  return 0;
}

}  // namespace tensorinit::app
