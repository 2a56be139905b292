// A synthetic model that looks like a trained one: an embedding, transformer layers
// (attention, MLP, norms), a head; values drawn like trained weights (about N(0, 0.02), norms
// near 1), deterministic per seed. Never zeros or uniform bytes: those flatter compression.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "format/safetensors_writer.hpp"
#include "util/error.hpp"

namespace tensorinit::app {

struct SynthOptions {
  uint64_t size = 0;           // target tensor bytes
  std::string dtype = "BF16";  // BF16, F16, F32
  uint32_t shards = 1;
  uint64_t seed = 0;
  bool tensorizer = false;     // .tensors files (format/tensorizer_writer.hpp) instead of safetensors
  // Many equal tensors instead of a transformer: `tensors` 1-D tensors of size/tensors bytes each
  // (at least one element), named like a mixture of experts' per-expert weights. 0: a transformer.
  uint64_t tensors = 0;
};

// The tensors (names, shapes) for a model of about `size` bytes (exact to one element).
std::vector<format::TensorSpec> synth_tensors(const SynthOptions& options);

// Writes OUTDIR/model.safetensors, or shards plus model.safetensors.index.json; with `tensorizer`,
// OUTDIR/model.tensors or shards model-0000K-of-0000N.tensors (a directory of them is the model),
// the same tensors with the same values. Each file is written under a temporary name and all are
// renamed into place at the end, never over an existing file: a failed or interrupted synth leaves
// no file that looks like a model (at most a *.tmp-XXXXXX), and an existing file is a Code::usage
// error before anything is written. An empty OUTDIR or "-", or a size beyond the free space, is
// Code::usage.
Status write_synth_model(const SynthOptions& options, const std::string& outdir);

}  // namespace tensorinit::app
