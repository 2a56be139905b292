#include "format/packed_table.hpp"

#include <zstd.h>

#include <algorithm>
#include <cstring>
#include <fmt/format.h>

#define XXH_INLINE_ALL  // header-only: no library to link (libxxhash-dev)
#include <xxhash.h>

namespace tensorinit::format {
namespace {

uint32_t load_u32(const std::byte* p) {
  uint32_t v = 0;
  std::memcpy(&v, p, 4);  // little-endian on every target we build for
  return v;
}

void put_u32(std::string& out, uint32_t v) { out.append(reinterpret_cast<const char*>(&v), 4); }

std::unexpected<Error> malformed(std::string_view name, std::string_view what) {
  return fail(Code::bad_data, fmt::format("{}: malformed packed file: {}", name, what));
}

// The fewest compressed bytes that can decode to `size`: a frame header (magic + descriptor) and,
// per block of at most 128 KiB, a 3-byte block header and one byte (an RLE block).
uint64_t min_stored_size(uint64_t size) {
  return 5 + 4 * ((size + ZSTD_BLOCKSIZE_MAX - 1) / ZSTD_BLOCKSIZE_MAX);
}

// The most: zstd's single-pass worst case, with room for a writer that flushed a few extra blocks.
uint64_t max_stored_size(uint64_t size) { return ZSTD_compressBound(size) + 1024; }

Status check_entry(uint32_t index, uint32_t stored, uint32_t size, std::string_view name) {
  if (stored == 0 && size != 0)
    return malformed(name, fmt::format("seek table entry {} has no compressed bytes but {} decoded", index, size));
  if (size > kMaxPackedFrame)
    return malformed(name, fmt::format("seek table entry {} decodes to {} bytes (the limit is {})", index, size,
                                       kMaxPackedFrame));
  if (size > 0 && (stored < min_stored_size(size) || stored > max_stored_size(size)))
    return malformed(name, fmt::format("seek table entry {}: {} compressed bytes cannot hold {} decoded bytes", index,
                                       stored, size));
  return {};
}

}  // namespace

uint32_t frame_checksum(std::span<const std::byte> bytes) {
  return static_cast<uint32_t>(XXH64(bytes.data(), bytes.size(), 0));
}

uint64_t SeekTable::uniform_frame_size() const {
  if (frames.empty()) return 0;
  const uint64_t first = frames.front().size;
  for (size_t i = 0; i + 1 < frames.size(); ++i)
    if (frames[i].size != first) return 0;
  return frames.back().size <= first ? first : 0;
}

size_t SeekTable::frame_at(uint64_t offset) const {
  auto it = std::upper_bound(frames.begin(), frames.end(), offset,
                             [](uint64_t at, const PackedFrame& f) { return at < f.offset; });
  return static_cast<size_t>(it - frames.begin()) - 1;
}

Result<SeekFooter> parse_seek_footer(std::span<const std::byte> last9, uint64_t file_size, std::string_view name) {
  if (last9.size() != kSeekFooterBytes || file_size < kSeekFooterBytes + 8)
    return malformed(name, fmt::format("{} bytes, too short for a seek table", file_size));
  if (load_u32(last9.data() + 5) != kSeekableMagic) return malformed(name, "no seekable-format magic at the end");
  SeekFooter footer;
  footer.frames = load_u32(last9.data());
  const auto descriptor = static_cast<uint8_t>(last9[4]);
  if (descriptor & 0x7C) return malformed(name, fmt::format("seek table descriptor {:#04x} sets reserved bits", descriptor));
  footer.checksums = descriptor & 0x80;
  if (footer.frames > kMaxPackedFrames)
    return malformed(name, fmt::format("seek table lists {} frames (the limit is {})", footer.frames, kMaxPackedFrames));
  const uint64_t entry = footer.checksums ? 12 : 8;
  footer.table_bytes = 8 + entry * footer.frames + kSeekFooterBytes;  // < 2^31: no overflow
  if (footer.table_bytes > file_size)
    return malformed(name, fmt::format("seek table of {} frames ({} bytes) is larger than the {}-byte file", footer.frames,
                                       footer.table_bytes, file_size));
  return footer;
}

Result<SeekTable> parse_seek_table(std::span<const std::byte> table, uint64_t file_size, std::string_view name) {
  if (table.size() < kSeekFooterBytes + 8) return malformed(name, "seek table is truncated");
  auto footer = parse_seek_footer(table.last(kSeekFooterBytes), file_size, name);
  if (!footer) return std::unexpected(footer.error());
  if (footer->table_bytes != table.size()) return malformed(name, "seek table size does not match its footer");
  if (load_u32(table.data()) != kSkippableMagic) return malformed(name, "seek table frame has the wrong magic");
  if (load_u32(table.data() + 4) != table.size() - 8)
    return malformed(name, fmt::format("seek table frame says {} bytes, its footer implies {}", load_u32(table.data() + 4),
                                       table.size() - 8));
  SeekTable out;
  out.checksums = footer->checksums;
  out.table_bytes = footer->table_bytes;
  const uint64_t data_end = file_size - out.table_bytes;
  const size_t entry = out.checksums ? 12 : 8;
  uint64_t stored = 0;
  for (uint32_t i = 0; i < footer->frames; ++i) {
    const std::byte* p = table.data() + 8 + i * entry;
    PackedFrame f{.stored_offset = stored, .offset = out.decoded_size, .stored_size = load_u32(p),
                  .size = load_u32(p + 4), .checksum = out.checksums ? load_u32(p + 8) : 0};
    if (auto ok = check_entry(i, f.stored_size, f.size, name); !ok) return std::unexpected(ok.error());
    stored += f.stored_size;  // at most 2^27 entries of < 2^32: no overflow
    if (stored > data_end)
      return malformed(name, fmt::format("seek table entries up to {} run past the {} bytes before the table", i, data_end));
    out.decoded_size += f.size;
    if (f.size > 0) {
      out.frames.push_back(f);
    } else if (f.stored_size > 0 && i + 1 == footer->frames) {
      out.meta_offset = f.stored_offset;  // a skippable frame; ours if its magic says so
      out.meta_size = f.stored_size;
    }
  }
  if (stored != data_end)
    return malformed(name, fmt::format("seek table entries cover {} bytes but {} precede the table", stored, data_end));
  return out;
}

Status apply_packed_metadata(SeekTable& table, std::span<const std::byte> meta, std::string_view name) {
  constexpr size_t kFixed = 8 + 8 + 4 + 4;
  if (meta.size() < 8 || load_u32(meta.data()) != kPackedMetaMagic) {
    table.meta_offset.reset();  // someone else's skippable frame: not ours to interpret
    return {};
  }
  if (meta.size() < kFixed || load_u32(meta.data() + 4) != meta.size() - 8)
    return malformed(name, "tensorinit metadata frame is truncated");
  if (std::memcmp(meta.data() + 8, kPackedMetaTag.data(), kPackedMetaTag.size()) != 0)
    return malformed(name, "tensorinit metadata frame has an unknown version");
  const uint32_t frames = load_u32(meta.data() + 16);
  if (frames != table.frames.size() || meta.size() != kFixed + frames)
    return malformed(name, fmt::format("tensorinit metadata describes {} frames, the seek table lists {}", frames,
                                       table.frames.size()));
  const auto transforms = meta.subspan(kFixed);
  if (frame_checksum(transforms) != load_u32(meta.data() + 20))
    return malformed(name, "tensorinit metadata frame fails its checksum");
  for (size_t i = 0; i < frames; ++i) {
    const auto t = static_cast<uint8_t>(transforms[i]);
    if (t != 0 && t != 2 && t != 4) return malformed(name, fmt::format("frame {} has unknown transform {}", i, t));
    table.frames[i].transform = t;
  }
  return {};
}

bool has_seekable_footer(const io::ByteSource& source) {
  if (source.size() < kSeekFooterBytes + 8) return false;
  std::byte magic[4];
  return source.read_at(source.size() - 4, magic) && load_u32(magic) == kSeekableMagic;
}

Result<SeekTable> read_seek_table(const io::ByteSource& source) {
  const std::string& name = source.name();
  const uint64_t size = source.size();
  // One read of the tail holds the footer, a table of a few thousand frames and our metadata.
  constexpr uint64_t kTail = 256 << 10;
  const uint64_t tail_len = std::min(size, kTail);
  if (tail_len < kSeekFooterBytes + 8) return malformed(name, fmt::format("{} bytes, too short for a seek table", size));
  std::vector<std::byte> tail(tail_len);
  if (auto ok = source.read_at(size - tail_len, tail); !ok) return std::unexpected(ok.error());
  auto footer = parse_seek_footer(std::span(tail).last(kSeekFooterBytes), size, name);
  if (!footer) return std::unexpected(footer.error());
  std::vector<std::byte> whole;
  std::span<const std::byte> table_bytes;
  if (footer->table_bytes <= tail_len) {
    table_bytes = std::span(tail).last(footer->table_bytes);
  } else {
    whole.resize(footer->table_bytes);  // bounded by the file's real size (parse_seek_footer)
    if (auto ok = source.read_at(size - whole.size(), whole); !ok) return std::unexpected(ok.error());
    table_bytes = whole;
  }
  auto table = parse_seek_table(table_bytes, size, name);
  if (!table || !table->meta_offset) return table;
  // The last entry decodes to nothing: a skippable frame, ours if it starts with our magic.
  const uint64_t meta_at = *table->meta_offset;
  const uint64_t ours = 24 + table->frames.size();
  std::vector<std::byte> meta(table->meta_size == ours ? ours : std::min<uint64_t>(table->meta_size, 8));
  if (meta_at >= size - tail_len)
    std::memcpy(meta.data(), tail.data() + (meta_at - (size - tail_len)), meta.size());
  else if (auto ok = source.read_at(meta_at, meta); !ok)
    return std::unexpected(ok.error());
  if (meta.size() != ours && meta.size() >= 4 && load_u32(meta.data()) == kPackedMetaMagic)
    return malformed(name, fmt::format("tensorinit metadata frame is {} bytes, expected {}", table->meta_size, ours));
  if (auto ok = apply_packed_metadata(*table, meta, name); !ok) return std::unexpected(ok.error());
  return table;
}

std::string packed_metadata_frame(std::span<const uint8_t> transforms) {
  std::string out;
  put_u32(out, kPackedMetaMagic);
  put_u32(out, static_cast<uint32_t>(16 + transforms.size()));
  out.append(kPackedMetaTag);
  put_u32(out, static_cast<uint32_t>(transforms.size()));
  put_u32(out, frame_checksum(std::as_bytes(transforms)));
  out.append(reinterpret_cast<const char*>(transforms.data()), transforms.size());
  return out;
}

std::string seek_table_frame(std::span<const SeekEntry> entries) {
  std::string out;
  put_u32(out, kSkippableMagic);
  put_u32(out, static_cast<uint32_t>(12 * entries.size() + kSeekFooterBytes));
  for (const auto& e : entries) {
    put_u32(out, e.stored_size);
    put_u32(out, e.size);
    put_u32(out, e.checksum);
  }
  put_u32(out, static_cast<uint32_t>(entries.size()));
  out.push_back(static_cast<char>(0x80));
  put_u32(out, kSeekableMagic);
  return out;
}

}  // namespace tensorinit::format
