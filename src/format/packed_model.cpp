#include "format/packed_model.hpp"

#include "format/packed_source.hpp"
#include "io/file_source.hpp"

namespace tensorinit::format {
namespace {

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

bool is_packed_path(const std::string& path, manifest::Format format) {
  using manifest::Format;
  if (format == Format::packed || ends_with(path, ".zst")) return true;
  if (format != Format::automatic || ends_with(path, ".safetensors") || ends_with(path, ".tensors")) return false;
  auto file = io::FileSource::open(path);
  return file && has_seekable_footer(**file);
}

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
