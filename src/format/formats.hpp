// The table of weight formats: for each, the file extension, the default file name, the reader,
// and whether the bytes on disk are the tensors' bytes. Local indexing (format/model_files.cpp) and
// remote indexing (plan/remote_model.cpp) pick a format and read a file only through here, so
// both choose the same way. Adding a format: util/weight_format.hpp, a row in formats.cpp, its reader
// (format/<name>.cpp, its entry point declared in formats.cpp: 3 files).
#pragma once

#include <span>
#include <stop_token>
#include <string_view>
#include <vector>

#include "format/tensor_index.hpp"
#include "io/byte_source.hpp"
#include "util/error.hpp"

namespace tensorinit::format {

struct FormatInfo {
  Format format;
  std::string_view extension;     // names ending so are this format: ".safetensors"
  std::string_view default_file;  // the file a source holds when it names none and has no shard index
  // A format whose files hold another's (packed files hold safetensors) may keep that one's
  // extension: format: packed accepts model.safetensors. Else automatic (none).
  Format wraps = Format::automatic;
  // Whether the bytes in the file are the tensors' bytes, so that staging may map or copy them as
  // they are (pagecache target, plain reads). Tensorizer: yes except tensors with
  // TensorEntry::encrypted set (decrypted while staged). Packed: no (zstd frames).
  bool bytes_are_tensors = true;
  // The tensors of one file through `bytes` (file offsets absolute, `file` left 0); may fill
  // `file`'s packed fields. Errors as the format's reader: no_source (incomplete), bad_data,
  // stopped (`stop` requested, where the reader checks it).
  Result<std::vector<TensorEntry>> (*read)(const io::ByteSource& bytes, WeightFile& file, std::stop_token stop);
};

// Every format, in the order a directory without a shard index is searched under format: auto
// (*.safetensors, else *.tensors, else *.zst). Thread-safe (constant).
std::span<const FormatInfo> formats();
// The row of a format; automatic gives safetensors' row (the default of a source). Thread-safe.
const FormatInfo& format_info(Format format);

// The format to read the file `name` as, given what the manifest asks for:
//   automatic: the format whose extension `name` has; no known extension: packed when `bytes` (may
//              be null: not looked at) ends with the seekable-format magic, else safetensors.
//   a format:  that one, unless `name` has another format's extension (Code::bad_data "NAME: a
//              packed file, but the manifest says format: safetensors").
// Reads at most the footer of `bytes`. Thread-safe when `bytes` is.
Result<Format> format_of_file(std::string_view name, Format requested, const io::ByteSource* bytes);

// Reads the file `file` (whose bytes are `bytes`) as `format` and appends it and its tensors to
// `model`, setting model.format (the first file's; packed after safetensors gives safetensors).
// Errors: the reader's; Code::bad_data when a tensorizer file is mixed with others. Not thread-safe
// for one `model`.
Status add_weight_file(ModelIndex& model, const io::ByteSource& bytes, WeightFile file, Format format,
                       std::stop_token stop = {});

}  // namespace tensorinit::format
