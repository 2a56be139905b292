// What a weight file holds, whatever its format: the tensors and where their bytes lie.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <boost/container/small_vector.hpp>

#include "util/weight_format.hpp"

namespace tensorinit::io {
class FileSource;  // io/file_source.hpp
}  // namespace tensorinit::io

namespace tensorinit::format {

// safetensors | tensorizer | packed, or automatic in a request (util/weight_format.hpp); what each
// means on disk: format/formats.hpp.
using Format = WeightFormat;

// A tensor's dimensions. Up to 4 held inline: a 100,000-tensor header then allocates once per
// entry fewer (the name is the other), which were ~2 us each with their page faults here.
using Shape = boost::container::small_vector<uint64_t, 4>;

struct TensorEntry {
  std::string name;             // state-dict key
  std::string dtype;            // safetensors vocabulary: BF16, F32, ...
  Shape shape;
  uint32_t file = 0;            // index into ModelIndex::files
  uint64_t file_offset = 0;     // absolute offset of the first byte in that file
  uint64_t bytes = 0;
  // Tensorizer meta tensors (data version 4, data_length 0): no bytes in the file; `bytes` is the
  // full size and the tensor loads as zeros. file_offset then points at nothing to read.
  bool zeros = false;
  uint64_t header_offset = 0;   // tensorizer: the per-tensor header (its checksums cover it); else 0
  bool encrypted = false;       // tensorizer: the data is encrypted (decrypted while staged)

  // Every field: a field added later is compared too (the write-through copy's re-index relies on it).
  bool operator==(const TensorEntry&) const = default;
};

struct WeightFile {
  std::string path;             // as opened
  uint64_t size = 0;            // the size the header implies (header + data)
  // Packed files (zstd seekable, format/packed_table.hpp): `size` is the decoded size.
  bool packed = false;
  uint64_t stored_size = 0;     // packed: the file's own size
  uint64_t frame_bytes = 0;     // packed: decoded bytes per frame (0: frames of varying size)
  // A local file: the descriptor its header was read from. Staging reads these bytes, never the
  // path again, and checks the file's identity (io::FileIdentity) before trusting them. Shared by
  // copies of the index; null for remote files (their sources are the plan's RemoteModel).
  std::shared_ptr<io::FileSource> source;
};

struct ModelIndex {
  // The files' format (never automatic). Packed and plain safetensors files mixed: safetensors
  // (WeightFile::packed says which file is which); tensorizer never mixes with the others.
  Format format = Format::safetensors;
  std::string dir;              // the model directory (TENSORINIT_MODEL_DIR)
  std::vector<WeightFile> files;
  std::vector<TensorEntry> tensors;  // in file order, then offset order

  uint64_t tensor_bytes() const {
    uint64_t total = 0;
    for (const auto& t : tensors) total += t.bytes;
    return total;
  }
};

}  // namespace tensorinit::format
