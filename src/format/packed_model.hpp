// Packed safetensors files as the model index sees them: which files are packed, and their
// tensors, read through the frames.
#pragma once

#include <string>

#include "format/safetensors.hpp"
#include "format/tensor_index.hpp"
#include "io/byte_source.hpp"
#include "manifest/manifest.hpp"

namespace tensorinit::format {

// Whether the file at `path` is to be read as packed: format: packed, a `.zst` name, or (format
// auto, and not named *.safetensors or *.tensors) the seekable-format magic at its end.
bool is_packed_path(const std::string& path, manifest::Format format);

// The safetensors layout of a packed file, read through its frames (offsets are decoded ones);
// `info` gets the packed sizes. Not a packed file, a malformed one, or not safetensors inside:
// Code::bad_data. Frees this thread's decode buffers before returning.
Result<SafetensorsLayout> read_packed_safetensors(const io::ByteSource& file, WeightFile& info);

}  // namespace tensorinit::format
