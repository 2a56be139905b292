#include "format/formats.hpp"

#include <fmt/format.h>

#include <array>
#include <iterator>

#include "format/packed_model.hpp"
#include "format/packed_table.hpp"
#include "format/safetensors.hpp"
#include "format/tensorizer.hpp"

namespace tensorinit::format {

// A new format's reader needs no header of its own: its .cpp defines, in tensorinit::format,
//   Result<std::vector<TensorEntry>> read_<name>_file(const io::ByteSource&, WeightFile&, std::stop_token);
// declared here, and its row names it (3 files: util/weight_format.hpp, this one, the reader's .cpp).
// The readers below have headers because inspect, the writers and stage use their layouts too.

namespace {

Result<std::vector<TensorEntry>> read_safetensors_file(const io::ByteSource& bytes, WeightFile&, std::stop_token stop) {
  auto layout = read_safetensors(bytes, stop);
  if (!layout) return std::unexpected(layout.error());
  return std::move(layout->tensors);
}

Result<std::vector<TensorEntry>> read_tensorizer_file(const io::ByteSource& bytes, WeightFile&, std::stop_token) {
  auto layout = read_tensorizer(bytes);
  if (!layout) return std::unexpected(layout.error());
  return std::move(layout->tensors);
}

Result<std::vector<TensorEntry>> read_packed_file(const io::ByteSource& bytes, WeightFile& file, std::stop_token) {
  auto layout = read_packed_safetensors(bytes, file);
  if (!layout) return std::unexpected(layout.error());
  return std::move(layout->tensors);
}

constexpr std::array<FormatInfo, 3> kFormats{{
    {.format = Format::safetensors, .extension = ".safetensors", .default_file = "model.safetensors",
     .read = &read_safetensors_file},
    {.format = Format::tensorizer, .extension = ".tensors", .default_file = "model.tensors",
     .read = &read_tensorizer_file},
    // `tensorinit pack` names its output NAME.zst.
    {.format = Format::packed, .extension = ".zst", .default_file = "model.safetensors.zst",
     .wraps = Format::safetensors, .bytes_are_tensors = false, .read = &read_packed_file},
}};

const FormatInfo* by_extension(std::string_view name) {
  for (const FormatInfo& f : kFormats)
    if (name.ends_with(f.extension)) return &f;
  return nullptr;
}

}  // namespace

std::span<const FormatInfo> formats() { return kFormats; }

const FormatInfo& format_info(Format format) {
  for (const FormatInfo& f : kFormats)
    if (f.format == format) return f;
  return kFormats[0];
}

Result<Format> format_of_file(std::string_view name, Format requested, const io::ByteSource* bytes) {
  const FormatInfo* named = by_extension(name);
  if (requested == Format::automatic) {
    if (named) return named->format;
    return bytes && has_seekable_footer(*bytes) ? Format::packed : Format::safetensors;
  }
  if (named && named->format != requested && named->format != format_info(requested).wraps)
    return fail(Code::bad_data, fmt::format("{}: a {} file, but the manifest says format: {}", name,
                                            weight_format_name(named->format), weight_format_name(requested)));
  return requested;
}

Status add_weight_file(ModelIndex& model, const io::ByteSource& bytes, WeightFile file, Format format,
                       std::stop_token stop) {
  const bool first = model.files.empty();
  if (!first && (format == Format::tensorizer) != (model.format == Format::tensorizer))
    return fail(Code::bad_data, fmt::format("{}: a {} file in a model of {} files: one model holds one of them",
                                            file.path, weight_format_name(format), weight_format_name(model.format)));
  auto tensors = format_info(format).read(bytes, file, stop);
  if (!tensors) return std::unexpected(tensors.error());
  if (first) model.format = format;
  else if (model.format != format) model.format = Format::safetensors;  // packed and plain safetensors
  const auto index = static_cast<uint32_t>(model.files.size());
  model.files.push_back(std::move(file));
  for (TensorEntry& t : *tensors) t.file = index;
  // Moved whole or appended in one step: growing the vector entry by entry moved every entry
  // about twice more (measured: 8% of a 500,000-tensor plan, most of it page faults).
  if (model.tensors.empty()) model.tensors = std::move(*tensors);
  else model.tensors.insert(model.tensors.end(), std::make_move_iterator(tensors->begin()),
                            std::make_move_iterator(tensors->end()));
  return {};
}

}  // namespace tensorinit::format
