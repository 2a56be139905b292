// `tensorinit pack IN OUT [--frame-size SIZE] [--level N] [--split-bytes]`
#include <sys/stat.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <fmt/format.h>

#include "app/commands.hpp"
#include "format/packed_writer.hpp"
#include "util/cpu.hpp"
#include "util/log.hpp"
#include "util/units.hpp"

namespace tensorinit::app {
namespace {

constexpr const char* kHelp = R"(usage: tensorinit pack IN OUT [--frame-size SIZE] [--level N] [--split-bytes]

Writes a compressed, seekable copy of the safetensors file IN to OUT (by convention
IN's name plus .zst): the zstd seekable format, independent zstd frames of SIZE
decoded bytes (default 4MiB; a multiple of 4KiB from 64KiB to 256MiB) followed by a
seek table with checksums. `zstd -d OUT` gives back IN byte for byte; tensorinit
inspect/load read OUT directly, decoding frames in parallel on the readers.
Frames are compressed in parallel on the usable cores, at zstd level N (default 1:
on bf16 weights it compresses as well as level 3, and byte planes better).
OUT is written under a temporary name and renamed when complete.

--split-bytes  also try frames of bf16/f16 (f32) data as byte planes (each value's
               bytes regrouped by position; compresses bf16 weights better) and
               keep that form where it is smaller. Such frames are marked in a
               tensorinit metadata frame, and tensorinit restores them, but
               plain `zstd -d` returns them as stored (byte planes):
               with --split-bytes, zstd -d does NOT give back the original file.
)";

Result<int> parse_level(const std::optional<std::string>& text) {
  if (!text) return 1;
  int v = 0;
  auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), v);
  if (ec != std::errc() || end != text->data() + text->size())
    return fail(Code::usage, fmt::format("pack: --level '{}' is not a number", *text));
  return v;
}

}  // namespace

Result<int> run_pack(Args& args) {
  if (args.flag("--help") || args.flag("-h")) return std::fputs(kHelp, stdout), 0;
  format::PackOptions options;
  options.split_bytes = args.flag("--split-bytes");
  auto frame = args.option("--frame-size");
  auto level_text = args.option("--level");
  for (auto* r : {&frame, &level_text})
    if (!*r) return std::unexpected(r->error());
  auto paths = args.positionals(2, 2);
  if (!paths) return std::unexpected(paths.error());
  if (*frame) {
    auto bytes = parse_size(**frame);
    if (!bytes) return fail(Code::usage, fmt::format("pack: --frame-size '{}' is not a size", **frame));
    options.frame_size = *bytes;
  }
  auto level = parse_level(*level_text);
  if (!level) return std::unexpected(level.error());
  options.level = *level;
  // Each thread holds about 4 frames (input, planes, two outputs): at most 2 GiB in all.
  // (pack_file refuses a bad frame size; 0, or 4 * a frame size that wraps, divided by zero here.)
  options.threads = static_cast<unsigned>(std::clamp<uint64_t>(
      (2ull << 30) / 4 / std::max<uint64_t>(options.frame_size, 1), 1, usable_cores()));
  const auto& in = (*paths)[0];
  const auto& out = (*paths)[1];
  for (const auto* path : {&in, &out})
    if (path->empty() || *path == "-")
      return fail(Code::usage, fmt::format("pack: '{}' is not a file path (IN and OUT are files)", *path));
  // OUT is renamed into place when complete (packed_writer); a file already there is not ours to
  // replace (it may be IN itself, or a model a server reads).
  struct stat st{};
  if (::lstat(out.c_str(), &st) == 0)
    return fail(Code::usage, fmt::format("pack: {} already exists; pack never replaces a file (remove it first)", out));
  const auto start = std::chrono::steady_clock::now();
  auto packed = format::pack_file(in, out, options);
  if (!packed) return std::unexpected(packed.error());
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::string planes;
  if (options.split_bytes)
    planes = fmt::format("; {} of {} frames as byte planes ({} tried)", packed->split_frames, packed->frames,
                         packed->tried_split);
  log::info(fmt::format("packed {} ({}) into {} ({}, x{:.3f}) in {} frames of {} at level {}{}; {:.2f} s on {} threads",
                        in, format_bytes(packed->input_bytes), out, format_bytes(packed->output_bytes),
                        static_cast<double>(packed->input_bytes) / static_cast<double>(std::max<uint64_t>(1, packed->output_bytes)),
                        packed->frames, format_bytes(options.frame_size), options.level, planes, seconds, options.threads));
  return 0;
}

}  // namespace tensorinit::app
