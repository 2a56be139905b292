// Tensorizer checksums and decryption in the read pipeline: the plan covers every tensor byte
// once (encryption chunks whole, a verified tensor one item), the arena ends byte-exact with the
// plaintext for every chunk size, reader count and alignment, through the host-style sink and
// the cuda sink's pinned buffers (runtime double); a flipped byte, a wrong or missing key each
// stop staging with an error naming the file and tensor.
#include "stage/tensorizer_reads.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <fmt/format.h>
#include <random>

#include "cuda_double.hpp"
#include "memory_sink.hpp"
#include "format/tensorizer.hpp"
#include "format/tensorizer_writer.hpp"
#include "stage/cuda_sink.hpp"

namespace tensorinit::stage {
namespace {

constexpr uint64_t kMemory = 1ull << 30;  // stage.memory_limit's default
const std::string kKeyHex = "5be7c4f1a09d3e26b8f05a7c1d92e4b36a0f8c5d7e19b2a4c6d8e0f1a3b5c7d9";

// File bytes in memory; with an alignment, a chunk's body must be read aligned as O_DIRECT wants.
// Tensorizer chunks end where tensors end, mid-file: the pipeline reads that tail (under one
// block) separately, which FileSource serves buffered; such short reads are not counted.
class BytesSource final : public io::ByteSource {
 public:
  BytesSource(std::string name, std::string bytes, uint64_t align)
      : bytes_(std::move(bytes)), name_(std::move(name)), align_(align) {}
  uint64_t size() const override { return bytes_.size(); }
  const std::string& name() const override { return name_; }
  uint64_t alignment() const override { return align_; }
  Status read_at(uint64_t offset, std::span<std::byte> out) const override {
    if (offset + out.size() > bytes_.size()) return fail(Code::bad_data, "read past end");
    const bool tail = out.size() < align_;
    if (align_ > 1 && !tail &&
        (offset % align_ || out.size() % align_ || reinterpret_cast<uintptr_t>(out.data()) % align_))
      misaligned++;
    std::memcpy(out.data(), bytes_.data() + offset, out.size());
    return {};
  }
  std::string bytes_;
  mutable std::atomic<int> misaligned{0};

 private:
  std::string name_;
  uint64_t align_;
};

using testing::MemorySink;

std::string random_string(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string out(n, '\0');
  for (auto& c : out) c = static_cast<char>(rng());
  return out;
}

// A model of one file: tensors small and large (several encryption chunks, several reads), a
// meta tensor, written by our writer (the real tensorizer's files: test_tensorizer_crypt.sh).
struct Model {
  std::vector<format::TensorizerTensor> tensors;
  std::vector<std::string> plain;
  std::unique_ptr<format::TensorizerKey> key;
  std::unique_ptr<BytesSource> source;
  format::ModelIndex index;

  Model(bool encrypted, uint64_t align) {
    const std::vector<uint64_t> sizes = {3, 70000, 1, 4096, 0, 200001, 17, 9000};
    for (size_t i = 0; i < sizes.size(); ++i) {
      tensors.push_back({.name = fmt::format("t{}", i), .dtype = "U8", .shape = {sizes[i] ? sizes[i] : 6}, .meta = sizes[i] == 0});
      plain.push_back(sizes[i] ? random_string(sizes[i], i) : "");
    }
    std::optional<format::TensorizerEncryption> encryption;
    if (encrypted) {
      key = std::make_unique<format::TensorizerKey>(*format::TensorizerKey::parse(Secret(kKeyHex)));
      encryption = format::TensorizerEncryption{.key = key.get(), .chunk_size = 4096};
    }
    auto bytes = format::write_tensorizer_bytes(tensors, plain, encryption);
    REQUIRE_MESSAGE(bytes.has_value(), bytes.error().message);
    source = std::make_unique<BytesSource>("m.tensors", std::move(*bytes), align);
    reindex();
  }

  void reindex() {
    auto layout = format::read_tensorizer(*source);
    REQUIRE_MESSAGE(layout.has_value(), layout.error().message);
    index = {};
    index.format = format::Format::tensorizer;
    index.files = {{"m.tensors", source->size()}};
    index.tensors = layout->tensors;
  }

  std::string expected(const format::TensorEntry& t) const {
    const size_t i = std::stoul(t.name.substr(1));
    return t.zeros ? std::string(t.bytes, '\0') : plain[i];
  }

  // `zeros_filled` false: the arena holds what the sink wrote and nothing else (device memory is
  // never zeroed; stage's cuda destination fills meta tensors, stage_matrix_test.cpp).
  void check_arena(const std::vector<std::byte>& arena, const ArenaLayout& layout, bool zeros_filled = true) const {
    for (size_t i = 0; i < index.tensors.size(); ++i) {
      const auto& t = index.tensors[i];
      if (t.zeros && !zeros_filled) continue;
      CHECK_MESSAGE(std::memcmp(arena.data() + layout.offsets[i], expected(t).data(), t.bytes) == 0, t.name);
    }
  }
};

TensorChecks model_config(bool verify, std::string key = kKeyHex) {
  return {.checksums = verify, .key = Secret(std::move(key)), .passphrase = {}};
}

Status stage_host(const Model& model, const TensorChecks& config, uint64_t chunk, unsigned readers,
                  std::vector<std::byte>& arena, std::unique_ptr<TensorizerReads>* kept = nullptr) {
  const auto layout = layout_arena(model.index);
  arena.assign(layout.bytes, std::byte{0});
  const io::ByteSource* files[] = {model.source.get()};
  auto reads = TensorizerReads::prepare(config, model.index, layout, chunk, files, kMemory);
  if (!reads) return std::unexpected(reads.error());
  REQUIRE(*reads != nullptr);
  model.source->misaligned = 0;  // record headers are read unaligned (buffered), as by FileSource
  MemorySink sink(arena);
  std::atomic<uint64_t> done{0};
  // As stage_model: the buffers hold the largest read (an encryption chunk may exceed `chunk`).
  auto ok = run_pipeline((*reads)->plan(), files, sink,
                         {.readers = readers, .chunk_size = (*reads)->chunk_size(), .filter = reads->get()}, {}, done);
  uint64_t read = 0;  // progress counts bytes read, headers between small tensors included
  for (const auto& c : (*reads)->plan().chunks) read += c.len;
  if (ok) CHECK(done == read);
  if (kept) *kept = std::move(*reads);
  return ok;
}

}  // namespace

TEST_CASE("tensorizer reads: the plan covers every tensor byte once, encryption chunks whole") {
  for (bool encrypted : {false, true}) {
    for (bool verify : {false, true}) {
      if (!encrypted && !verify) continue;
      Model model(encrypted, 1);
      const auto layout = layout_arena(model.index);
      const io::ByteSource* files[] = {model.source.get()};
      for (uint64_t chunk : {4096ull, 12288ull, 1ull << 20}) {
        auto reads = TensorizerReads::prepare(model_config(verify), model.index, layout, chunk, files, kMemory);
        REQUIRE_MESSAGE(reads.has_value(), reads.error().message);
        REQUIRE(*reads);
        const ReadPlan& plan = (*reads)->plan();
        CHECK(plan.bytes == model.index.tensor_bytes() - 6);  // all but the meta tensor's zeros
        std::vector<uint64_t> covered(model.index.tensors.size(), 0);
        for (const auto& c : plan.chunks) {
          CHECK(c.len <= chunk);
          for (uint32_t p = c.first_piece; p < c.first_piece + c.piece_count; ++p) {
            const Piece& piece = plan.pieces[p];
            CHECK(piece.file_offset >= c.offset);
            CHECK(piece.file_offset + piece.len <= c.offset + c.len);
            for (size_t i = 0; i < model.index.tensors.size(); ++i) {
              const auto& t = model.index.tensors[i];
              if (t.zeros || piece.file_offset < t.file_offset || piece.file_offset >= t.file_offset + t.bytes) continue;
              covered[i] += piece.len;
              CHECK(piece.dest_offset == layout.offsets[i] + (piece.file_offset - t.file_offset));
              if (encrypted) CHECK((piece.file_offset - t.file_offset) % 4096 == 0);  // whole encryption chunks
            }
          }
        }
        for (size_t i = 0; i < covered.size(); ++i)
          CHECK(covered[i] == (model.index.tensors[i].zeros ? 0 : model.index.tensors[i].bytes));
        // With checksums, a tensor's reads are one item, largest first; without, each read its own.
        const auto starts = (*reads)->item_starts();
        REQUIRE(starts.back() == plan.chunks.size());
        if (!verify) CHECK(starts.size() == plan.chunks.size() + 1);
        // The largest tensor (200001 bytes) first: 49 reads from its start when encrypted, 49 or 50
        // at file-aligned boundaries when not.
        if (verify && chunk == 4096) CHECK(starts[1] - starts[0] == (encrypted ? 49u : 50u));
      }
    }
  }
}

TEST_CASE("tensorizer reads: byte-exact arenas for every chunk size, reader count and alignment") {
  for (uint64_t align : {1ull, 4096ull}) {
    for (bool encrypted : {false, true}) {
      for (bool verify : {false, true}) {
        if (!encrypted && !verify) continue;
        Model model(encrypted, align);
        for (uint64_t chunk : {4096ull, 16384ull, 1ull << 20}) {
          for (unsigned readers : {1u, 3u, 8u}) {
            std::vector<std::byte> arena;
            auto ok = stage_host(model, model_config(verify), chunk, readers, arena);
            REQUIRE_MESSAGE(ok.has_value(), ok.error().message);
            model.check_arena(arena, layout_arena(model.index));
          }
        }
        CHECK(model.source->misaligned == 0);
      }
    }
  }
}

TEST_CASE("tensorizer reads: a flipped byte, a wrong key or no key stops staging, naming file and tensor") {
  SUBCASE("checksum mismatch (plain file)") {
    Model model(false, 1);
    const auto& t = *std::find_if(model.index.tensors.begin(), model.index.tensors.end(), [](auto& x) { return x.name == "t5"; });
    model.source->bytes_[t.file_offset + 150000] ^= 1;
    std::vector<std::byte> arena;
    auto ok = stage_host(model, model_config(true), 16384, 3, arena);
    REQUIRE_FALSE(ok.has_value());
    CHECK(ok.error().code == Code::bad_data);
    CHECK_MESSAGE(ok.error().message.find("m.tensors: tensor 't5': CRC-32 mismatch") != std::string::npos,
                  ok.error().message);
    // Without checksums nothing looks: the flip is staged as is.
    TensorChecks size_only = model_config(false);
    const auto layout = layout_arena(model.index);
    const io::ByteSource* files[] = {model.source.get()};
    auto none = TensorizerReads::prepare(size_only, model.index, layout, 16384, files, kMemory);
    REQUIRE(none.has_value());
    CHECK(*none == nullptr);
  }
  SUBCASE("altered ciphertext fails its MAC") {
    Model model(true, 1);
    const auto& t = *std::find_if(model.index.tensors.begin(), model.index.tensors.end(), [](auto& x) { return x.name == "t1"; });
    model.source->bytes_[t.file_offset + 5000] ^= 1;
    std::vector<std::byte> arena;
    auto ok = stage_host(model, model_config(false), 16384, 3, arena);
    REQUIRE_FALSE(ok.has_value());
    CHECK(ok.error().code == Code::bad_data);
    CHECK_MESSAGE(ok.error().message.find("m.tensors: tensor 't1': decryption failed at chunk 2 of 18") != std::string::npos,
                  ok.error().message);
  }
  SUBCASE("wrong key: authentication fails; the key is never in the message") {
    Model model(true, 1);
    const std::string wrong(64, 'b');
    std::vector<std::byte> arena;
    auto ok = stage_host(model, model_config(true, wrong), 16384, 3, arena);
    REQUIRE_FALSE(ok.has_value());
    CHECK(ok.error().code == Code::bad_data);
    CHECK(ok.error().message.find("decryption failed") != std::string::npos);
    CHECK(ok.error().message.find("wrong model.key") != std::string::npos);
    CHECK(ok.error().message.find(wrong) == std::string::npos);
    CHECK(ok.error().message.find(kKeyHex) == std::string::npos);
  }
  SUBCASE("no key, a malformed key, a passphrase for a key-encrypted file, an encryption chunk over memory_limit") {
    Model model(true, 1);
    const auto layout = layout_arena(model.index);
    const io::ByteSource* files[] = {model.source.get()};
    auto none = TensorizerReads::prepare(model_config(false, ""), model.index, layout, 16384, files, kMemory);
    REQUIRE_FALSE(none.has_value());
    CHECK(none.error().code == Code::bad_data);
    CHECK(none.error().message == "m.tensors: encrypted: set model.key (or model.passphrase) to load it");
    auto malformed = TensorizerReads::prepare(model_config(false, "abc"), model.index, layout, 16384, files, kMemory);
    REQUIRE_FALSE(malformed.has_value());
    CHECK(malformed.error().code == Code::bad_manifest);
    TensorChecks with_passphrase = model_config(false, "");
    with_passphrase.passphrase = Secret("hunter2");
    auto pass = TensorizerReads::prepare(with_passphrase, model.index, layout, 16384, files, kMemory);
    REQUIRE_FALSE(pass.has_value());
    CHECK(pass.error().message.find("was encrypted with a key, not a passphrase: set model.key") != std::string::npos);
    CHECK(pass.error().message.find("hunter2") == std::string::npos);
    auto small = TensorizerReads::prepare(model_config(false), model.index, layout, 2048, files, 3000);
    REQUIRE_FALSE(small.has_value());
    CHECK(small.error().code == Code::bad_manifest);
    CHECK_MESSAGE(small.error().message.find("m.tensors: tensor 't1' is encrypted in chunks of 4.00 KiB, more than "
                                             "stage.memory_limit") != std::string::npos, small.error().message);
  }
}

// Regression: an encryption chunk (4 KiB here, 2 MiB from tensorizer) above stage.chunk_size was
// refused with exit 78; the reads of that file now grow to whole encryption chunks.
TEST_CASE("tensorizer reads: a chunk_size below the encryption chunk reads whole encryption chunks") {
  for (bool verify : {false, true}) {
    Model model(true, 4096);
    const auto layout = layout_arena(model.index);
    const io::ByteSource* files[] = {model.source.get()};
    for (uint64_t chunk : {1024ull, 2048ull, 4095ull}) {
      auto reads = TensorizerReads::prepare(model_config(verify), model.index, layout, chunk, files, kMemory);
      REQUIRE_MESSAGE(reads.has_value(), reads.error().message);
      CHECK((*reads)->chunk_size() == 4096);
      for (const auto& c : (*reads)->plan().chunks) CHECK(c.len <= 4096);
      std::vector<std::byte> arena;
      auto ok = stage_host(model, model_config(verify), chunk, 3, arena);
      REQUIRE_MESSAGE(ok.has_value(), ok.error().message);
      model.check_arena(arena, layout);
    }
    auto same = TensorizerReads::prepare(model_config(verify), model.index, layout, 8192, files, kMemory);
    REQUIRE(same.has_value());
    CHECK((*same)->chunk_size() == 8192);
  }
}

TEST_CASE("tensorizer reads: a passphrase-derived key decrypts") {
  const format::KeyDerivation how{.opslimit = 1, .memlimit = 8192, .alg = 2, .salt = std::string(16, 'z')};
  auto key = format::TensorizerKey::derive(Secret("open sesame"), how);
  REQUIRE(key.has_value());
  const std::vector<format::TensorizerTensor> tensors{{.name = "t0", .dtype = "U8", .shape = {10000}}};
  const std::vector<std::string> plain{random_string(10000, 9)};
  auto bytes = format::write_tensorizer_bytes(tensors, plain, format::TensorizerEncryption{.key = &*key, .derivation = how});
  REQUIRE(bytes.has_value());
  Model model(false, 1);  // replaced below
  model.plain = plain;
  model.source = std::make_unique<BytesSource>("m.tensors", std::move(*bytes), 1);
  model.reindex();
  TensorChecks config = model_config(true, "");
  config.passphrase = Secret("open sesame");
  std::vector<std::byte> arena;
  auto ok = stage_host(model, config, 1 << 20, 2, arena);
  REQUIRE_MESSAGE(ok.has_value(), ok.error().message);
  model.check_arena(arena, layout_arena(model.index));
  config.passphrase = Secret("open sesame!");
  CHECK_FALSE(stage_host(model, config, 1 << 20, 2, arena).has_value());
}

TEST_CASE("tensorizer reads: safetensors models have nothing to check") {
  format::ModelIndex safetensors;
  safetensors.format = format::Format::safetensors;
  auto none = TensorizerReads::prepare(model_config(true), safetensors, {}, 1 << 20, {}, kMemory);
  REQUIRE(none.has_value());
  CHECK(*none == nullptr);
}

TEST_CASE("tensorizer reads: decrypted and verified in the cuda sink's pinned buffers (runtime double)") {
  cuda_double::configure({.devices = 1, .copy_delay_us = 50, .abort_on_violation = false});
  cuda_double::reset();
  {
    Model model(true, 4096);
    const auto layout = layout_arena(model.index);
    const io::ByteSource* files[] = {model.source.get()};
    const uint64_t chunk = 16384;
    auto reads = TensorizerReads::prepare(model_config(true), model.index, layout, chunk, files, kMemory);
    REQUIRE_MESSAGE(reads.has_value(), reads.error().message);
    std::vector<CudaArena> arenas;
    auto arena = CudaArena::allocate(0, layout.bytes);
    REQUIRE(arena.has_value());
    arenas.push_back(std::move(*arena));
    {
      auto sink = CudaSink::create(arenas, {.buffer_bytes = chunk + 8192, .buffers = 3, .streams_per_device = 2});
      REQUIRE(sink.has_value());
      std::atomic<uint64_t> done{0};
      auto ok = run_pipeline((*reads)->plan(), files, **sink, {.readers = 3, .chunk_size = chunk, .filter = reads->get()},
                             {}, done);
      REQUIRE_MESSAGE(ok.has_value(), ok.error().message);
      REQUIRE((*sink)->finish().has_value());
    }
    std::vector<std::byte> back(layout.bytes);
    REQUIRE(cudart::cudaMemcpy(back.data(), arenas[0].data(), layout.bytes, cudart::kDeviceToHost) == cudart::kSuccess);
    model.check_arena(back, layout, false);
  }
  CHECK(cuda_double::violations().empty());
  cuda_double::configure({});
  cuda_double::reset();
}

}  // namespace tensorinit::stage
