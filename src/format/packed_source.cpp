#define ZSTD_STATIC_LINKING_ONLY  // ZSTD_d_forceIgnoreChecksum (libzstd is linked statically)
#include "format/packed_source.hpp"

#include <zstd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fmt/format.h>
#include <vector>

#include "format/packed_transform.hpp"

namespace tensorinit::format {
namespace {

std::atomic<uint64_t> next_source_id{1};

struct FreeBytes {
  void operator()(std::byte* p) const { std::free(p); }
};
struct FreeDctx {
  void operator()(ZSTD_DCtx* d) const { ZSTD_freeDCtx(d); }
};

// What a reader thread keeps between reads: its decoder, the compressed bytes of the frames it
// is decoding (aligned: O_DIRECT inner sources read into it), and one decoded frame for reads that
// cut frames, remembered so that the next read of the same frame does not decode it again.
struct DecodeState {
  static constexpr size_t kAlign = 4096;
  std::unique_ptr<ZSTD_DCtx, FreeDctx> dctx;
  std::unique_ptr<std::byte, FreeBytes> stored;
  size_t stored_capacity = 0;
  std::vector<std::byte> frame;
  uint64_t frame_source = 0;  // 0: nothing cached
  size_t frame_index = 0;

  std::byte* stored_buffer(size_t n) {
    if (n > stored_capacity) {
      const size_t capacity = (n + kAlign - 1) / kAlign * kAlign;
      stored.reset(static_cast<std::byte*>(std::aligned_alloc(kAlign, capacity)));
      if (!stored) throw std::bad_alloc();
      stored_capacity = capacity;
    }
    return stored.get();
  }
  ZSTD_DCtx* decoder() {
    if (!dctx) {
      dctx.reset(ZSTD_createDCtx());
      if (!dctx) throw std::bad_alloc();
      // Frames of up to 1 GiB may be single-segment: their window is the whole frame.
      ZSTD_DCtx_setParameter(dctx.get(), ZSTD_d_windowLogMax, 30);
    }
    return dctx.get();
  }
};

thread_local DecodeState state;

std::unexpected<Error> corrupt(const std::string& name, size_t frame, std::string_view what) {
  return fail(Code::bad_data, fmt::format("{}: packed frame {}: {}", name, frame, what));
}

}  // namespace

void release_packed_decode_state() { state = DecodeState{}; }

PackedSource::PackedSource(const io::ByteSource& inner, SeekTable table)
    : inner_(&inner), table_(std::move(table)), id_(next_source_id.fetch_add(1)) {}

Result<std::unique_ptr<PackedSource>> PackedSource::open(const io::ByteSource& inner) {
  auto table = read_seek_table(inner);
  if (!table) return std::unexpected(table.error());
  return std::unique_ptr<PackedSource>(new PackedSource(inner, std::move(*table)));
}

Result<std::unique_ptr<PackedSource>> PackedSource::open(std::unique_ptr<io::ByteSource> inner) {
  auto source = open(*inner);
  if (source) (*source)->owned_ = std::move(inner);
  return source;
}

// One inner read for the compressed bytes of frames [first, last], widened to the inner
// source's alignment (an O_DIRECT file) where it has one.
Status PackedSource::read_frames(size_t first, size_t last, std::span<const std::byte>& stored) const {
  const uint64_t begin = table_.frames[first].stored_offset;
  const uint64_t end = table_.frames[last].stored_offset + table_.frames[last].stored_size;
  const uint64_t align = inner_->alignment();
  const uint64_t a_begin = begin / align * align;
  const uint64_t a_end = std::min(inner_->size(), (end + align - 1) / align * align);
  std::byte* buffer = state.stored_buffer(a_end - a_begin);
  const uint64_t body = (a_end - a_begin) / align * align;
  if (auto ok = inner_->read_at(a_begin, std::span(buffer, body)); !ok) return ok;
  if (a_end - a_begin > body)
    if (auto ok = inner_->read_at(a_begin + body, std::span(buffer + body, a_end - a_begin - body)); !ok) return ok;
  compressed_read_.fetch_add(a_end - a_begin, std::memory_order_relaxed);
  stored = std::span<const std::byte>(buffer + (begin - a_begin), end - begin);
  return {};
}

// Decodes frame `index` (its compressed bytes `stored`) into `out` (exactly its decoded size)
// and checks it against the seek table.
Status PackedSource::decode_frame(size_t index, std::span<const std::byte> stored, std::span<std::byte> out) const {
  const PackedFrame& f = table_.frames[index];
  const std::string& file = name();
  const size_t frame_len = ZSTD_findFrameCompressedSize(stored.data(), stored.size());
  if (ZSTD_isError(frame_len) || frame_len != stored.size())
    return corrupt(file, index, fmt::format("is not one zstd frame of {} bytes as the seek table says", stored.size()));
  const auto content = ZSTD_getFrameContentSize(stored.data(), stored.size());
  if (content == ZSTD_CONTENTSIZE_ERROR) return corrupt(file, index, "not a zstd frame");
  if (content != ZSTD_CONTENTSIZE_UNKNOWN && content != f.size)
    return corrupt(file, index, fmt::format("holds {} bytes but the seek table says {}", content, f.size));
  ZSTD_DCtx* dctx = state.decoder();
  // With seek-table checksums we check those (they cover every frame, whoever wrote it); zstd's
  // own frame checksum would hash the same bytes a second time.
  ZSTD_DCtx_setParameter(dctx, ZSTD_d_forceIgnoreChecksum,
                         table_.checksums ? ZSTD_d_ignoreChecksum : ZSTD_d_validateChecksum);
  const size_t n = ZSTD_decompressDCtx(dctx, out.data(), out.size(), stored.data(), stored.size());
  if (ZSTD_isError(n)) return corrupt(file, index, fmt::format("does not decode: {}", ZSTD_getErrorName(n)));
  if (n != f.size) return corrupt(file, index, fmt::format("decodes to {} bytes but the seek table says {}", n, f.size));
  decoded_.fetch_add(n, std::memory_order_relaxed);
  if (table_.checksums && frame_checksum(out) != f.checksum)
    return corrupt(file, index, "checksum mismatch: the file is corrupt");
  return {};
}

// Bytes [within, within + out.size()) of frame `index`, through the thread's decoded frame.
Status PackedSource::copy_from_frame(size_t index, std::span<const std::byte> stored, uint64_t within,
                                     std::span<std::byte> out) const {
  const PackedFrame& f = table_.frames[index];
  if (state.frame_source != id_ || state.frame_index != index) {
    state.frame_source = 0;
    state.frame.resize(f.size);
    if (auto ok = decode_frame(index, stored, state.frame); !ok) return ok;
    state.frame_source = id_;
    state.frame_index = index;
  }
  const auto frame = std::span<const std::byte>(state.frame.data(), f.size);
  if (f.transform) join_planes(frame, f.transform, within, out);
  else std::memcpy(out.data(), frame.data() + within, out.size());
  return {};
}

Status PackedSource::read_at(uint64_t offset, std::span<std::byte> out) const {
  if (offset > size() || out.size() > size() - offset)
    return fail(Code::bad_data, fmt::format("{}: decoded data ends at {} (asked for {} bytes at {})", name(), size(),
                                            out.size(), offset));
  if (out.empty()) return {};
  const uint64_t end = offset + out.size();
  const size_t first = table_.frame_at(offset);
  const size_t last = table_.frame_at(end - 1);
  std::span<const std::byte> stored;
  const bool cached = first == last && state.frame_source == id_ && state.frame_index == first;
  if (!cached)
    if (auto ok = read_frames(first, last, stored); !ok) return ok;
  const uint64_t stored_base = table_.frames[first].stored_offset;
  for (size_t i = first; i <= last; ++i) {
    const PackedFrame& f = table_.frames[i];
    const uint64_t lo = std::max(offset, f.offset);
    const uint64_t hi = std::min(end, f.offset + f.size);
    const auto dest = out.subspan(lo - offset, hi - lo);
    const auto frame_bytes = cached ? stored : stored.subspan(f.stored_offset - stored_base, f.stored_size);
    const bool whole = lo == f.offset && hi == f.offset + f.size;
    if (whole && f.transform == 0 && !cached) {
      if (auto ok = decode_frame(i, frame_bytes, dest); !ok) return ok;
    } else if (auto ok = copy_from_frame(i, frame_bytes, lo - f.offset, dest); !ok) {
      return ok;
    }
  }
  return {};
}

}  // namespace tensorinit::format
