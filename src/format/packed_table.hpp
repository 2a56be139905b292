// Packed files: a safetensors file in the zstd seekable format (formats.md). Independent zstd
// frames, then a skippable frame holding the seek table:
//
//   [frame 0] ... [frame n-1] [tensorinit metadata (optional)] [seek table]
//   seek table = u32 0x184D2A5E | u32 size | n x (u32 compressed, u32 decoded [, u32 checksum])
//                | u32 n | u8 descriptor (bit 7: checksums) | u32 0x8F92EAB1
//
// The checksum is the low 32 bits of XXH64 of the frame as zstd decodes it.
//
// tensorinit's own metadata (which frames hold byte planes, packed_transform.hpp) is a skippable
// frame listed in the seek table as one more entry with 0 decoded bytes, the last one. Keeping it
// inside the table keeps the file valid for readers that require the entries to add up to the
// file (pyzstd does), and `zstd -d` skips it like any skippable frame:
//
//   u32 0x184D2A5B | u32 size | "TIPACK01" | u32 frames | u32 XXH64-low of the bytes below
//   | u8 transform per data frame (0: as is; 2 or 4: byte planes of that stride)
//
// Everything is validated before anything large is allocated: sizes add up to the file exactly,
// no frame decodes to more than kMaxPackedFrame, no frame claims more bytes than zstd could make
// of its compressed size (nor fewer than a compressor could need).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "io/byte_source.hpp"
#include "util/error.hpp"

namespace tensorinit::format {

inline constexpr uint32_t kSkippableMagic = 0x184D2A5E;    // the seek table's skippable frame
inline constexpr uint32_t kPackedMetaMagic = 0x184D2A5B;   // tensorinit's metadata frame
inline constexpr uint32_t kSeekableMagic = 0x8F92EAB1;     // the last 4 bytes of a packed file
inline constexpr uint64_t kSeekFooterBytes = 9;
inline constexpr uint64_t kMaxPackedFrame = 1ull << 30;    // decoded bytes; the spec's own limit
inline constexpr uint64_t kMaxPackedFrames = 0x8000000;    // ZSTD_SEEKABLE_MAXFRAMES
inline constexpr std::string_view kPackedMetaTag = "TIPACK01";

struct PackedFrame {
  uint64_t stored_offset = 0;  // in the packed file
  uint64_t offset = 0;         // in the decoded bytes
  uint32_t stored_size = 0;
  uint32_t size = 0;           // decoded bytes, never 0 (empty entries are dropped)
  uint32_t checksum = 0;       // when SeekTable::checksums
  uint8_t transform = 0;       // 0, or the byte-plane stride (2, 4)
};

struct SeekTable {
  std::vector<PackedFrame> frames;  // decoded frames in order; offsets tile [0, decoded_size)
  bool checksums = false;
  uint64_t decoded_size = 0;
  uint64_t table_bytes = 0;         // the seek table's skippable frame, at the end of the file
  // The metadata frame (the last entry, 0 decoded bytes, our magic); absent: no transforms.
  std::optional<uint64_t> meta_offset;
  uint32_t meta_size = 0;

  // Decoded bytes per frame when all frames but the last have the same size; else 0.
  uint64_t uniform_frame_size() const;
  // The frame holding decoded byte `offset` (< decoded_size).
  size_t frame_at(uint64_t offset) const;
};

// The footer alone (the last 9 bytes): frame count and entry size. Errors: Code::bad_data.
struct SeekFooter {
  uint32_t frames = 0;
  bool checksums = false;
  uint64_t table_bytes = 0;  // the whole skippable frame: 8 + frames * entry + 9
};
Result<SeekFooter> parse_seek_footer(std::span<const std::byte> last9, uint64_t file_size, std::string_view name);

// The whole seek-table frame (`table_bytes` bytes ending the file). Errors: Code::bad_data.
Result<SeekTable> parse_seek_table(std::span<const std::byte> table, uint64_t file_size, std::string_view name);

// Applies tensorinit's metadata frame (all meta_size bytes at meta_offset) to `table`.
Status apply_packed_metadata(SeekTable& table, std::span<const std::byte> meta, std::string_view name);

// True when the source ends with the seekable magic (a cheap sniff; read_seek_table decides).
bool has_seekable_footer(const io::ByteSource& source);

// Reads and validates the seek table (and the metadata frame) of a packed file: one read of the
// file's tail in the common case.
Result<SeekTable> read_seek_table(const io::ByteSource& source);

// The bytes of a metadata frame for `transforms` (one per data frame), and of a seek table.
std::string packed_metadata_frame(std::span<const uint8_t> transforms);
struct SeekEntry {
  uint32_t stored_size = 0;
  uint32_t size = 0;
  uint32_t checksum = 0;
};
std::string seek_table_frame(std::span<const SeekEntry> entries);

// Low 32 bits of XXH64 (seed 0): the seek table's checksum.
uint32_t frame_checksum(std::span<const std::byte> bytes);

}  // namespace tensorinit::format
