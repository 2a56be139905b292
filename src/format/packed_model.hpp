// Packed safetensors files as the model index sees them: their tensors, read through the frames.
// Which files are packed: format_of_file (format/formats.hpp).
#pragma once

#include <string>

#include "format/safetensors.hpp"
#include "format/tensor_index.hpp"
#include "io/byte_source.hpp"

namespace tensorinit::format {

// The safetensors layout of a packed file, read through its frames (offsets are decoded ones);
// `info` gets the packed sizes. Not a packed file, a malformed one, or not safetensors inside:
// Code::bad_data. Frees this thread's decode buffers before returning.
Result<SafetensorsLayout> read_packed_safetensors(const io::ByteSource& file, WeightFile& info);

}  // namespace tensorinit::format
