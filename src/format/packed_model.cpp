#include "format/packed_model.hpp"

#include "format/packed_source.hpp"

namespace tensorinit::format {

Result<SafetensorsLayout> read_packed_safetensors(const io::ByteSource& file, WeightFile& info) {
  auto packed = PackedSource::open(file);
  if (!packed) return std::unexpected(packed.error());
  auto layout = read_safetensors(**packed);
  release_packed_decode_state();
  if (!layout) {
    Error e = layout.error();
    // Decoded bytes that disagree with their own header are corrupt, not "incomplete".
    if (e.code == Code::no_source) e.code = Code::bad_data;
    return std::unexpected(e);
  }
  info.size = (*packed)->size();
  info.packed = true;
  info.stored_size = file.size();
  info.frame_bytes = (*packed)->table().uniform_frame_size();
  return layout;
}

}  // namespace tensorinit::format
