#include "app/synth_model.hpp"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fmt/format.h>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "format/tensorizer_writer.hpp"
#include "util/atomic_file.hpp"
#include "util/cpu.hpp"
#include "util/fd.hpp"
#include "util/units.hpp"

namespace tensorinit::app {
namespace {

uint32_t element_bytes(const std::string& dtype) { return dtype == "F32" ? 4 : 2; }

uint64_t splitmix(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// 65536 values of N(mean, 0.02) encoded in the dtype: drawing from the table costs one random
// index per element, which is what makes 8 GiB take seconds.
std::vector<uint8_t> value_table(const std::string& dtype, double mean, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(static_cast<float>(mean), 0.02f);
  const uint32_t eb = element_bytes(dtype);
  std::vector<uint8_t> table(65536 * eb);
  for (size_t i = 0; i < 65536; ++i) {
    float v = normal(rng);
    if (dtype == "F32") {
      std::memcpy(&table[i * 4], &v, 4);
    } else if (dtype == "F16") {
      _Float16 h = static_cast<_Float16>(v);
      std::memcpy(&table[i * 2], &h, 2);
    } else {  // BF16: round to nearest even from f32
      uint32_t bits;
      std::memcpy(&bits, &v, 4);
      bits += 0x7FFF + ((bits >> 16) & 1);
      uint16_t b = static_cast<uint16_t>(bits >> 16);
      std::memcpy(&table[i * 2], &b, 2);
    }
  }
  return table;
}

void fill(std::byte* out, uint64_t elements, const std::vector<uint8_t>& table, uint32_t eb, uint64_t seed) {
  uint64_t state = seed;
  uint64_t i = 0;
  while (i < elements) {
    uint64_t r = splitmix(state);
    for (int k = 0; k < 4 && i < elements; ++k, ++i, r >>= 16)
      std::memcpy(out + i * eb, &table[(r & 0xFFFF) * eb], eb);
  }
}

struct Shard {
  std::string file;
  std::vector<format::TensorSpec> tensors;
  std::vector<bool> is_norm;
};

std::vector<Shard> split_shards(const std::vector<format::TensorSpec>& tensors, uint32_t shards, std::string_view ext) {
  uint64_t total = 0;
  for (const auto& t : tensors) total += t.bytes;
  std::vector<Shard> out(shards);
  uint64_t done = 0;
  size_t k = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const size_t left_tensors = tensors.size() - i;
    const size_t left_shards = shards - k;
    if (k + 1 < shards && !out[k].tensors.empty() &&
        (done >= total / shards * (k + 1) || left_tensors <= left_shards - 1))
      ++k;
    out[k].tensors.push_back(tensors[i]);
    out[k].is_norm.push_back(tensors[i].name.find("norm") != std::string::npos);
    done += tensors[i].bytes;
  }
  for (uint32_t s = 0; s < shards; ++s)
    out[s].file = shards == 1 ? fmt::format("model.{}", ext) : fmt::format("model-{:05}-of-{:05}.{}", s + 1, shards, ext);
  return out;
}

// Runs body(item, buffer) for items [0, count) on every usable core, each worker with its own
// buffer of buffer_bytes; the first false stops all workers. False when any body failed.
bool for_each_item(size_t count, size_t buffer_bytes,
                   const std::function<bool(size_t, std::vector<std::byte>&)>& body) {
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  {
    std::vector<std::jthread> workers;
    for (unsigned w = 0; w < usable_cores(); ++w)
      workers.emplace_back([&] {
        std::vector<std::byte> buffer(buffer_bytes);
        for (size_t i; !failed && (i = next.fetch_add(1)) < count;)
          if (!body(i, buffer)) failed = true;
      });
  }
  return !failed;
}

Status write_shard(const Shard& shard, const std::string& path, const SynthOptions& options, uint64_t shard_seed) {
  const std::string head = format::safetensors_head(shard.tensors, {{"format", "pt"}, {"writer", "tensorinit synth"}});
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd) return fail(Code::io, fmt::format("{}: {}", path, std::strerror(errno)));
  if (::pwrite(fd.get(), head.data(), head.size(), 0) != static_cast<ssize_t>(head.size()))
    return fail(Code::io, fmt::format("{}: write failed: {}", path, std::strerror(errno)));
  const uint32_t eb = element_bytes(options.dtype);
  const auto weights = value_table(options.dtype, 0.0, options.seed);
  const auto norms = value_table(options.dtype, 1.0, options.seed + 1);
  // Work items: 4 MiB blocks of each tensor, filled and written by all cores in parallel.
  struct Block { uint64_t offset, elements; bool norm; uint64_t seed; };
  constexpr uint64_t kBlockElems = (4u << 20) / 4;
  std::vector<Block> blocks;
  uint64_t offset = head.size();
  for (size_t i = 0; i < shard.tensors.size(); ++i) {
    const uint64_t elems = shard.tensors[i].bytes / eb;
    for (uint64_t e = 0; e < elems; e += kBlockElems)
      blocks.push_back({offset + e * eb, std::min(kBlockElems, elems - e), shard.is_norm[i],
                        shard_seed * 1000003 + blocks.size()});
    offset += shard.tensors[i].bytes;
  }
  const bool ok = for_each_item(blocks.size(), kBlockElems * eb, [&](size_t b, std::vector<std::byte>& buffer) {
    fill(buffer.data(), blocks[b].elements, blocks[b].norm ? norms : weights, eb, blocks[b].seed);
    const size_t len = blocks[b].elements * eb;
    return ::pwrite(fd.get(), buffer.data(), len, static_cast<off_t>(blocks[b].offset)) == static_cast<ssize_t>(len);
  });
  if (!ok) return fail(Code::io, fmt::format("{}: write failed (disk full?)", path));
  return {};
}

// The same tensors and values as write_shard (the same block seeds), as a tensorizer file: each
// tensor is written by one thread (its checksums run in order), the largest first.
Status write_tensorizer_shard(const Shard& shard, const std::string& path, const SynthOptions& options,
                              uint64_t shard_seed) {
  std::vector<format::TensorizerTensor> tensors;
  for (const auto& t : shard.tensors) tensors.push_back({.name = t.name, .dtype = t.dtype, .shape = t.shape});
  auto writer = format::TensorizerWriter::make(std::move(tensors));
  if (!writer) return std::unexpected(writer.error());
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd) return fail(Code::io, fmt::format("{}: {}", path, std::strerror(errno)));
  const std::string& head = writer->head();
  const char trailer[8] = {};
  if (::pwrite(fd.get(), head.data(), head.size(), 0) != static_cast<ssize_t>(head.size()) ||
      ::pwrite(fd.get(), trailer, 8, static_cast<off_t>(writer->file_size() - 8)) != 8)
    return fail(Code::io, fmt::format("{}: write failed: {}", path, std::strerror(errno)));
  const uint32_t eb = element_bytes(options.dtype);
  const auto weights = value_table(options.dtype, 0.0, options.seed);
  const auto norms = value_table(options.dtype, 1.0, options.seed + 1);
  constexpr uint64_t kBlockElems = (4u << 20) / 4;  // as write_shard
  std::vector<uint64_t> first_block;                // write_shard numbers blocks across the shard
  for (uint64_t i = 0, blocks = 0; i < shard.tensors.size(); ++i) {
    first_block.push_back(blocks);
    blocks += (shard.tensors[i].bytes / eb + kBlockElems - 1) / kBlockElems;
  }
  std::vector<size_t> order(shard.tensors.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return shard.tensors[a].bytes > shard.tensors[b].bytes; });
  const bool ok = for_each_item(order.size(), kBlockElems * eb, [&](size_t k, std::vector<std::byte>& buffer) {
    const size_t i = order[k];
    auto record = writer->record(i);
    const uint64_t elems = shard.tensors[i].bytes / eb;
    for (uint64_t e = 0, b = first_block[i]; e < elems; e += kBlockElems, ++b) {
      const uint64_t n = std::min(kBlockElems, elems - e);
      fill(buffer.data(), n, shard.is_norm[i] ? norms : weights, eb, shard_seed * 1000003 + b);
      record.add(std::span(buffer.data(), n * eb));
      const auto at = static_cast<off_t>(writer->data_offset(i) + e * eb);
      if (::pwrite(fd.get(), buffer.data(), n * eb, at) != static_cast<ssize_t>(n * eb)) return false;
    }
    const std::string header = record.header();
    return ::pwrite(fd.get(), header.data(), header.size(), static_cast<off_t>(writer->header_offset(i))) ==
           static_cast<ssize_t>(header.size());
  });
  if (!ok) return fail(Code::io, fmt::format("{}: write failed (disk full?)", path));
  return {};
}

// The files of one synth run, each written under a temporary name beside its final one and
// published only when all are written, never over an existing file (RENAME_NOREPLACE): an
// interrupted or failed synth leaves no file that looks like (part of) a model, and a synth never
// replaces a file it did not write. What is not published, or was published by a run that then
// failed, is removed by the destructor. Not thread-safe.
class Outputs {
 public:
  Outputs() = default;
  Outputs(const Outputs&) = delete;
  Outputs& operator=(const Outputs&) = delete;
  ~Outputs() {
    if (committed_) return;
    for (const auto& f : files_) ::unlink((f.published ? f.final_path : f.temp).c_str());
  }

  // A new empty temporary file for `final_path`; returns its path.
  Result<std::string> add(const std::string& final_path) {
    std::string temp = final_path + ".tmp-XXXXXX";
    UniqueFd fd(::mkostemp(temp.data(), O_CLOEXEC));
    if (!fd) return fail(Code::io, fmt::format("{}: cannot create: {}", final_path, std::strerror(errno)));
    files_.push_back({temp, final_path, false});
    return temp;
  }

  // Renames every temporary into place, refusing to replace anything.
  Status publish() {
    for (auto& f : files_) {
      if (::chmod(f.temp.c_str(), 0644) != 0)
        return fail(Code::io, fmt::format("{}: {}", f.temp, std::strerror(errno)));
      int rc = ::renameat2(AT_FDCWD, f.temp.c_str(), AT_FDCWD, f.final_path.c_str(), RENAME_NOREPLACE);
      if (rc != 0 && errno == EINVAL) {  // a file system without RENAME_NOREPLACE: link() refuses too
        rc = ::link(f.temp.c_str(), f.final_path.c_str());
        if (rc == 0) ::unlink(f.temp.c_str());
      }
      if (rc != 0 && errno == EEXIST) return exists(f.final_path);
      if (rc != 0) return fail(Code::io, fmt::format("{}: cannot publish: {}", f.final_path, std::strerror(errno)));
      f.published = true;
    }
    committed_ = true;
    return {};
  }

  static Status exists(const std::string& path) {
    return fail(Code::usage, fmt::format("synth: {} already exists; synth never replaces a file (remove it, or "
                                         "give an empty OUTDIR)", path));
  }

 private:
  struct File {
    std::string temp, final_path;
    bool published;
  };
  std::vector<File> files_;
  bool committed_ = false;
};

Status write_text(const std::string& path, const std::string& text) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC));
  if (!fd || ::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()))
    return fail(Code::io, fmt::format("{}: write failed: {}", path, std::strerror(errno)));
  return {};
}

// Free space where `dir` is or will be created (its nearest existing ancestor).
std::optional<uint64_t> free_bytes(const std::filesystem::path& dir) {
  std::filesystem::path at = std::filesystem::absolute(dir);
  for (;;) {
    struct statvfs st{};
    if (::statvfs(at.c_str(), &st) == 0) return static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
    if (!at.has_parent_path() || at.parent_path() == at) return std::nullopt;
    at = at.parent_path();
  }
}

}  // namespace

std::vector<format::TensorSpec> synth_tensors(const SynthOptions& o) {
  const uint32_t eb = element_bytes(o.dtype);
  if (o.tensors > 0) {  // per-expert weights and scales of a large mixture of experts
    const uint64_t each = std::max<uint64_t>(1, o.size / o.tensors / eb);
    std::vector<format::TensorSpec> t;
    t.reserve(o.tensors);
    for (uint64_t i = 0; i < o.tensors; ++i)
      t.push_back({fmt::format("model.layers.{}.mlp.experts.{}.w{}", i / 1024, i / 4 % 256, i % 4), o.dtype, {each},
                   each * eb});
    return t;
  }
  const uint64_t elements = o.size / eb;
  // Elements ≈ 10·h² per layer × ~10 layers + an 8·h² embedding: h = sqrt(elements / 108).
  uint64_t h = static_cast<uint64_t>(std::sqrt(static_cast<double>(elements) / 108.0));
  h = h >= 128 ? h / 64 * 64 : std::max<uint64_t>(16, h / 16 * 16);
  std::vector<format::TensorSpec> t;
  auto add = [&](std::string name, std::vector<uint64_t> shape) {
    uint64_t n = 1;
    for (auto d : shape) n *= d;
    t.push_back({std::move(name), o.dtype, std::move(shape), n * eb});
  };
  uint64_t left = elements;
  if (left >= 8 * h * h) {
    add("model.embed_tokens.weight", {8 * h, h});
    left -= 8 * h * h;
  }
  const uint64_t per_layer = 10 * h * h + 2 * h;
  for (uint64_t i = 0; left >= per_layer; ++i, left -= per_layer) {
    const std::string p = fmt::format("model.layers.{}.", i);
    add(p + "input_layernorm.weight", {h});
    add(p + "self_attn.q_proj.weight", {h, h});
    add(p + "self_attn.k_proj.weight", {h, h});
    add(p + "self_attn.v_proj.weight", {h, h});
    add(p + "self_attn.o_proj.weight", {h, h});
    add(p + "post_attention_layernorm.weight", {h});
    add(p + "mlp.gate_proj.weight", {2 * h, h});
    add(p + "mlp.up_proj.weight", {2 * h, h});
    add(p + "mlp.down_proj.weight", {h, 2 * h});
  }
  if (left >= h) {
    add("model.norm.weight", {h});
    left -= h;
  }
  if (left >= h) {
    add("lm_head.weight", {left / h, h});
    left %= h;
  }
  if (left > 0) add("lm_head.bias", {left});
  return t;
}

Status write_synth_model(const SynthOptions& options, const std::string& outdir) {
  namespace fs = std::filesystem;
  if (outdir.empty() || outdir == "-")
    return fail(Code::usage, fmt::format("synth: OUTDIR '{}' is not a directory path", outdir));
  const auto tensors = synth_tensors(options);
  if (tensors.size() < options.shards)
    return fail(Code::usage, fmt::format("synth: {} tensors cannot fill {} shards; use a larger --size", tensors.size(),
                                         options.shards));
  const auto shards = split_shards(tensors, options.shards, options.tensorizer ? "tensors" : "safetensors");
  const bool indexed = options.shards > 1 && !options.tensorizer;  // a directory of *.tensors needs no index
  const std::string index_path = (fs::path(outdir) / "model.safetensors.index.json").string();
  std::vector<std::string> finals;
  for (const auto& shard : shards) finals.push_back((fs::path(outdir) / shard.file).string());
  if (indexed) finals.push_back(index_path);
  std::error_code ec;
  for (const auto& path : finals)
    if (fs::symlink_status(path, ec).type() != fs::file_type::not_found) return Outputs::exists(path);
  uint64_t need = 0;
  for (const auto& t : tensors) need += t.bytes;
  if (auto space = free_bytes(outdir); space && *space < need)
    return fail(Code::usage, fmt::format("synth: --size {} does not fit: {} has {} free", format_bytes(need),
                                         outdir, format_bytes(*space)));
  fs::create_directories(outdir, ec);
  if (ec) return fail(Code::io, fmt::format("{}: {}", outdir, ec.message()));
  Outputs outputs;
  // A sorted map (as Hugging Face writes it): ordered_json finds each key by a linear scan,
  // which made synth quadratic in the tensor count.
  nlohmann::json weight_map = nlohmann::json::object();
  uint64_t total = 0;
  for (uint32_t s = 0; s < shards.size(); ++s) {
    auto temp = outputs.add(finals[s]);
    if (!temp) return std::unexpected(temp.error());
    if (auto ok = options.tensorizer ? write_tensorizer_shard(shards[s], *temp, options, options.seed + s)
                                     : write_shard(shards[s], *temp, options, options.seed + s);
        !ok)
      return ok;
    for (const auto& t : shards[s].tensors) {
      weight_map[t.name] = shards[s].file;
      total += t.bytes;
    }
  }
  if (indexed) {
    nlohmann::ordered_json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
    auto temp = outputs.add(index_path);
    if (!temp) return std::unexpected(temp.error());
    if (auto ok = write_text(*temp, index.dump(2) + "\n"); !ok) return ok;
  }
  return outputs.publish();
}

}  // namespace tensorinit::app
