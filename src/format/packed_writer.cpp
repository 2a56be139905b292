#include "format/packed_writer.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <fmt/format.h>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "format/packed_table.hpp"
#include "format/packed_transform.hpp"
#include "format/safetensors.hpp"
#include "io/file_source.hpp"
#include "util/fd.hpp"

namespace tensorinit::format {
namespace {

// The output, written under a temporary name beside it and renamed into place by commit();
// removed if never committed.
class TempOutput {
 public:
  static Result<TempOutput> create(const std::string& path) {
    TempOutput out;
    out.path_ = path;
    out.temp_ = path + ".tmp-XXXXXX";
    int fd = ::mkostemp(out.temp_.data(), O_CLOEXEC);
    if (fd < 0) return fail(Code::io, fmt::format("{}: cannot create: {}", path, std::strerror(errno)));
    out.fd_.reset(fd);
    return out;
  }
  TempOutput() = default;
  TempOutput(TempOutput&& o) noexcept : path_(std::move(o.path_)), temp_(std::exchange(o.temp_, {})), fd_(std::move(o.fd_)) {}
  ~TempOutput() {
    if (!temp_.empty()) ::unlink(temp_.c_str());
  }

  Status write(std::string_view bytes) {
    for (size_t done = 0; done < bytes.size();) {
      ssize_t n = ::write(fd_.get(), bytes.data() + done, bytes.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return fail(Code::io, fmt::format("{}: write failed: {}", path_, std::strerror(errno)));
      done += static_cast<size_t>(n);
    }
    return {};
  }

  Status commit() {
    if (::fchmod(fd_.get(), 0644) != 0 || ::fsync(fd_.get()) != 0 || ::rename(temp_.c_str(), path_.c_str()) != 0)
      return fail(Code::io, fmt::format("{}: cannot commit: {}", path_, std::strerror(errno)));
    temp_.clear();
    return {};
  }

 private:
  std::string path_;
  std::string temp_;
  UniqueFd fd_;
};

// Which frames to try as byte planes: those that are mostly 16-bit floats (stride 2) or mostly
// f32 (stride 4). Alignment need not be checked: a frame keeps the planes only if they compress
// smaller, and a misaligned tensor simply will not.
std::vector<uint8_t> plane_strides(const SafetensorsLayout& layout, uint64_t file_size, uint64_t frame_size) {
  const uint64_t frames = (file_size + frame_size - 1) / frame_size;
  std::vector<uint64_t> half(frames), word(frames);
  for (const auto& t : layout.tensors) {
    std::vector<uint64_t>* counts = t.dtype == "BF16" || t.dtype == "F16" ? &half : t.dtype == "F32" ? &word : nullptr;
    if (!counts) continue;
    for (uint64_t at = t.file_offset, end = t.file_offset + t.bytes; at < end;) {
      const uint64_t frame = at / frame_size;
      const uint64_t next = std::min(end, (frame + 1) * frame_size);
      (*counts)[frame] += next - at;
      at = next;
    }
  }
  std::vector<uint8_t> strides(frames, 0);
  for (uint64_t i = 0; i < frames; ++i) {
    const uint64_t len = std::min(frame_size, file_size - i * frame_size);
    if (2 * half[i] >= len) strides[i] = 2;
    else if (2 * word[i] >= len) strides[i] = 4;
  }
  return strides;
}

struct FreeCctx {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};

// One worker's compressor and buffers.
class FrameCompressor {
 public:
  explicit FrameCompressor(const PackOptions& options)
      : cctx_(ZSTD_createCCtx()), input_(options.frame_size), planes_(options.frame_size),
        plain_(ZSTD_compressBound(options.frame_size)), split_(ZSTD_compressBound(options.frame_size)) {
    if (!cctx_) throw std::bad_alloc();
    ZSTD_CCtx_setParameter(cctx_.get(), ZSTD_c_compressionLevel, options.level);
    ZSTD_CCtx_setParameter(cctx_.get(), ZSTD_c_checksumFlag, 1);
  }

  struct Frame {
    std::string_view bytes;
    SeekEntry entry;
    uint8_t transform = 0;
  };

  // Compresses the input frame (`len` bytes in input()) as is, and as planes of `stride` if
  // nonzero; returns the smaller.
  Result<Frame> compress(size_t len, uint8_t stride) {
    const std::span<const std::byte> data(input_.data(), len);
    auto plain = squeeze(data, plain_);
    if (!plain) return std::unexpected(plain.error());
    Frame best{.bytes = {reinterpret_cast<const char*>(plain_.data()), *plain},
               .entry = {static_cast<uint32_t>(*plain), static_cast<uint32_t>(len), frame_checksum(data)}};
    if (stride == 0 || len < stride) return best;
    const std::span<std::byte> planes(planes_.data(), len);
    split_planes(data, stride, planes);
    auto split = squeeze(planes, split_);
    if (!split) return std::unexpected(split.error());
    if (*split < *plain)
      best = {.bytes = {reinterpret_cast<const char*>(split_.data()), *split},
              .entry = {static_cast<uint32_t>(*split), static_cast<uint32_t>(len), frame_checksum(planes)},
              .transform = stride};
    return best;
  }

  std::span<std::byte> input() { return input_; }

 private:
  Result<size_t> squeeze(std::span<const std::byte> in, std::vector<std::byte>& out) {
    const size_t n = ZSTD_compress2(cctx_.get(), out.data(), out.size(), in.data(), in.size());
    if (ZSTD_isError(n)) return fail(Code::internal, fmt::format("zstd: {}", ZSTD_getErrorName(n)));
    return n;
  }

  std::unique_ptr<ZSTD_CCtx, FreeCctx> cctx_;
  std::vector<std::byte> input_, planes_, plain_, split_;
};

// Workers take frames in order and write them in order: frame i waits for frame i-1's write.
class OrderedFrames {
 public:
  explicit OrderedFrames(size_t frames) : entries_(frames), transforms_(frames) {}

  std::optional<size_t> take() {
    std::lock_guard lock(mutex_);
    if (error_ || next_ == entries_.size()) return std::nullopt;
    return next_++;
  }
  // Waits for frame i's turn; false if another worker failed.
  bool wait_turn(size_t i) {
    std::unique_lock lock(mutex_);
    turn_.wait(lock, [&] { return error_ || written_ == i; });
    return !error_;
  }
  void written(size_t i, SeekEntry entry, uint8_t transform) {
    std::lock_guard lock(mutex_);
    entries_[i] = entry;
    transforms_[i] = transform;
    ++written_;
    turn_.notify_all();
  }
  void fail(Error e) {
    std::lock_guard lock(mutex_);
    if (!error_) error_ = std::move(e);
    turn_.notify_all();
  }
  const std::optional<Error>& error() const { return error_; }
  const std::vector<SeekEntry>& entries() const { return entries_; }
  const std::vector<uint8_t>& transforms() const { return transforms_; }

 private:
  std::mutex mutex_;
  std::condition_variable turn_;
  size_t next_ = 0, written_ = 0;
  std::optional<Error> error_;
  std::vector<SeekEntry> entries_;
  std::vector<uint8_t> transforms_;
};

Status compress_frames(const io::FileSource& input, TempOutput& output, const std::vector<uint8_t>& strides,
                       const PackOptions& options, OrderedFrames& frames, PackResult& result) {
  const uint64_t size = input.size();
  std::mutex stats;
  auto work = [&] {
    try {
      FrameCompressor compressor(options);
      while (auto i = frames.take()) {
        const uint64_t at = *i * options.frame_size;
        const size_t len = static_cast<size_t>(std::min(options.frame_size, size - at));
        const auto in = compressor.input().first(len);
        if (auto ok = input.read_at(at, in); !ok) return frames.fail(ok.error());
        const uint8_t stride = options.split_bytes ? strides[*i] : 0;
        auto frame = compressor.compress(len, stride);
        if (!frame) return frames.fail(frame.error());
        if (!frames.wait_turn(*i)) return;
        if (auto ok = output.write(frame->bytes); !ok) return frames.fail(ok.error());
        frames.written(*i, frame->entry, frame->transform);
        std::lock_guard lock(stats);
        result.output_bytes += frame->bytes.size();
        result.tried_split += stride != 0;
        result.split_frames += frame->transform != 0;
      }
    } catch (const std::bad_alloc&) {
      frames.fail(Error{Code::internal, "out of memory while compressing"});
    }
  };
  {
    std::vector<std::jthread> workers;
    for (unsigned w = 0; w < std::max(1u, options.threads); ++w) workers.emplace_back(work);
  }
  if (frames.error()) return std::unexpected(*frames.error());
  return {};
}

Status check_options(const PackOptions& o) {
  if (o.frame_size < kMinPackFrame || o.frame_size > kMaxPackFrame || o.frame_size % 4096 != 0)
    return fail(Code::usage, fmt::format("pack: --frame-size {} must be a multiple of 4 KiB from {} to {}", o.frame_size,
                                         kMinPackFrame, kMaxPackFrame));
  if (o.level < ZSTD_minCLevel() || o.level > ZSTD_maxCLevel() || o.level == 0)
    return fail(Code::usage, fmt::format("pack: --level {} is outside {}..{} (0 excluded)", o.level, ZSTD_minCLevel(),
                                         ZSTD_maxCLevel()));
  return {};
}

}  // namespace

Result<PackResult> pack_file(const std::string& in, const std::string& out, const PackOptions& options) {
  if (auto ok = check_options(options); !ok) return std::unexpected(ok.error());
  auto input = io::FileSource::open(in);
  if (!input) return std::unexpected(input.error());
  auto layout = read_safetensors(**input);
  if (!layout) {
    Error e = layout.error();
    if (e.code == Code::no_source) e.code = Code::bad_data;  // "incomplete": the file is there, but cut short
    return std::unexpected(e);
  }
  const uint64_t size = (*input)->size();
  PackResult result;
  result.input_bytes = size;
  result.frames = static_cast<uint32_t>((size + options.frame_size - 1) / options.frame_size);
  if (size / options.frame_size >= kMaxPackedFrames)
    return fail(Code::usage, fmt::format("pack: {} needs more than {} frames; use a larger --frame-size", in, kMaxPackedFrames));
  auto output = TempOutput::create(out);
  if (!output) return std::unexpected(output.error());
  OrderedFrames frames(result.frames);
  const auto strides = plane_strides(*layout, size, options.frame_size);
  if (auto ok = compress_frames(**input, *output, strides, options, frames, result); !ok) return std::unexpected(ok.error());
  std::vector<SeekEntry> entries = frames.entries();
  std::string tail;
  if (result.split_frames > 0) {
    tail = packed_metadata_frame(frames.transforms());
    entries.push_back({static_cast<uint32_t>(tail.size()), 0, frame_checksum({})});
  }
  tail += seek_table_frame(entries);
  if (auto ok = output->write(tail); !ok) return std::unexpected(ok.error());
  if (auto ok = output->commit(); !ok) return std::unexpected(ok.error());
  result.output_bytes += tail.size();
  return result;
}

}  // namespace tensorinit::format
