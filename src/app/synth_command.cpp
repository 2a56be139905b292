// `tensorinit synth --size SIZE [--dtype bf16|f16|f32] [--shards N] [--format F] [--seed N] OUTDIR`
#include <charconv>
#include <cstdio>
#include <fmt/format.h>

#include "app/commands.hpp"
#include "app/synth_model.hpp"
#include "util/log.hpp"
#include "util/units.hpp"

namespace tensorinit::app {
namespace {

constexpr const char* kHelp = R"(usage: tensorinit synth --size SIZE [--dtype bf16|f16|f32] [--shards N]
                       [--format safetensors|tensorizer] [--seed N] [--tensors N] OUTDIR

Writes a synthetic model of about SIZE tensor bytes (e.g. 4GiB) to OUTDIR: an
embedding, transformer layers and a head, with values drawn like trained weights
(about N(0, 0.02); norms near 1), deterministic per --seed (default 0). One file
(model.safetensors) or N shards with model.safetensors.index.json. With
--format tensorizer: the same tensors and values as tensorizer files
(model.tensors, or N shards model-0000K-of-0000N.tensors), each tensor's
CRC-32 and SHA-256 in its header, readable by tensorizer's TensorDeserializer.
With --tensors N: N equal 1-D tensors of SIZE/N bytes each (at least one
element) instead of a transformer, like the per-expert weights and scales of a
large mixture of experts (what the tensor-count benchmark loads).
)";

Result<uint64_t> parse_count(const std::optional<std::string>& text, uint64_t fallback, const char* flag) {
  if (!text) return fallback;
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), v);
  if (ec != std::errc() || end != text->data() + text->size())
    return fail(Code::usage, fmt::format("synth: {} '{}' is not a number", flag, *text));
  return v;
}

}  // namespace

Result<int> run_synth(Args& args) {
  if (args.flag("--help") || args.flag("-h")) return std::fputs(kHelp, stdout), 0;
  SynthOptions o;
  auto size = args.option("--size");
  auto dtype = args.option("--dtype");
  auto shards = args.option("--shards");
  auto format = args.option("--format");
  auto seed = args.option("--seed");
  auto count = args.option("--tensors");
  for (auto* r : {&size, &dtype, &shards, &format, &seed, &count})
    if (!*r) return std::unexpected(r->error());
  auto out = args.positionals(1, 1);
  if (!out) return std::unexpected(out.error());
  if (!*size) return fail(Code::usage, "synth: --size is required (e.g. --size 4GiB)");
  auto bytes = parse_size(**size);
  if (!bytes || *bytes == 0) return fail(Code::usage, fmt::format("synth: --size '{}' is not a size", **size));
  o.size = *bytes;
  const std::string d = dtype->value_or("bf16");
  if (d == "bf16") o.dtype = "BF16";
  else if (d == "f16") o.dtype = "F16";
  else if (d == "f32") o.dtype = "F32";
  else return fail(Code::usage, fmt::format("synth: --dtype '{}' (use bf16, f16 or f32)", d));
  const std::string f = format->value_or("safetensors");
  if (f != "safetensors" && f != "tensorizer")
    return fail(Code::usage, fmt::format("synth: --format '{}' (use safetensors or tensorizer)", f));
  o.tensorizer = f == "tensorizer";
  auto n = parse_count(*shards, 1, "--shards");
  auto s = parse_count(*seed, 0, "--seed");
  auto c = parse_count(*count, 0, "--tensors");
  if (!n) return std::unexpected(n.error());
  if (!s) return std::unexpected(s.error());
  if (!c) return std::unexpected(c.error());
  if (*c > 100'000'000) return fail(Code::usage, "synth: --tensors must be at most 100000000");
  o.tensors = *c;
  if (*n == 0 || *n > 99999) return fail(Code::usage, "synth: --shards must be 1..99999");
  o.shards = static_cast<uint32_t>(*n);
  o.seed = *s;
  if (auto ok = write_synth_model(o, out->front()); !ok) return std::unexpected(ok.error());
  log::info(fmt::format("wrote a {} {} {} model to {}", format_bytes(o.size), d, f, out->front()));
  return 0;
}

}  // namespace tensorinit::app
