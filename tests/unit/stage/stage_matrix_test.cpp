// The stage request matrix: every target (host arena, page cache, cuda through the runtime double)
// x local/remote files x plain safetensors / encrypted tensorizer / packed / tensorizer with a meta
// tensor. Where the target can hold the model, every tensor lands byte for byte (a meta tensor as
// zeros); where it cannot (the page cache serving bytes that are not the tensor's), the load is
// refused before anything is read, naming the file, and nothing is left in shm_dir.
#include <doctest/doctest.h>

#include <filesystem>
#include <fmt/format.h>
#include <random>

#include "../format/test_files.hpp"
#include "cuda_double.hpp"
#include "format/model_files.hpp"
#include "format/packed_writer.hpp"
#include "format/safetensors_writer.hpp"
#include "format/tensorizer_crypt.hpp"
#include "format/tensorizer_writer.hpp"
#include "io/memory_source.hpp"
#include "stage/cuda_device.hpp"
#include "stage/cuda_runtime.hpp"
#include "stage/stage.hpp"

namespace tensorinit::stage {
namespace {

using testing::TempDir;

enum class Kind { plain, encrypted, packed, meta };
const char* name_of(Kind k) {
  switch (k) {
    case Kind::plain: return "plain";
    case Kind::encrypted: return "encrypted";
    case Kind::packed: return "packed";
    case Kind::meta: return "meta";
  }
  return "?";
}

const std::string kKeyHex = "5be7c4f1a09d3e26b8f05a7c1d92e4b36a0f8c5d7e19b2a4c6d8e0f1a3b5c7d9";

std::string random_bytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string out(n, '\0');
  for (auto& c : out) c = static_cast<char>(rng() | 1);  // never zero: a tensor left unstaged shows
  return out;
}

// One model in a temp directory, indexed as the plan indexes it, and what each tensor must hold.
struct Model {
  TempDir dir;
  std::string file;                   // its one weight file, as named in the directory
  std::vector<std::string> expected;  // per index.tensors entry
  format::ModelIndex index;
  std::unique_ptr<format::TensorizerKey> key;

  explicit Model(Kind kind) {
    const std::vector<uint64_t> sizes = {3, 70000, 4096, 200001};
    std::vector<std::string> data;
    for (size_t i = 0; i < sizes.size(); ++i) data.push_back(random_bytes(sizes[i], i + 1));
    if (kind == Kind::plain || kind == Kind::packed) {
      std::vector<format::TensorSpec> specs;
      std::string body;
      for (size_t i = 0; i < sizes.size(); ++i) {
        specs.push_back({fmt::format("t{}", i), "U8", {sizes[i]}, sizes[i]});
        body += data[i];
      }
      testing::write_file(dir / "model.safetensors", format::safetensors_head(specs, {}) + body);
      file = "model.safetensors";
      if (kind == Kind::packed) {
        auto packed = format::pack_file(dir / "model.safetensors", dir / "model.safetensors.zst",
                                        {.frame_size = format::kMinPackFrame});
        REQUIRE_MESSAGE(packed.has_value(), packed.error().message);
        std::filesystem::remove(dir / "model.safetensors");
        file = "model.safetensors.zst";
      }
      expected = data;
    } else {
      std::vector<format::TensorizerTensor> tensors;
      for (size_t i = 0; i < sizes.size(); ++i) {
        const bool meta = kind == Kind::meta && i == 2;
        tensors.push_back({.name = fmt::format("t{}", i), .dtype = "U8", .shape = {sizes[i]}, .meta = meta});
        expected.push_back(meta ? std::string(sizes[i], '\0') : data[i]);
      }
      std::optional<format::TensorizerEncryption> encryption;
      if (kind == Kind::encrypted) {
        key = std::make_unique<format::TensorizerKey>(*format::TensorizerKey::parse(Secret(kKeyHex)));
        encryption = format::TensorizerEncryption{.key = key.get(), .chunk_size = 65536};
      }
      auto bytes = format::write_tensorizer_bytes(tensors, data, encryption);
      REQUIRE_MESSAGE(bytes.has_value(), bytes.error().message);
      testing::write_file(dir / "model.tensors", *bytes);
      file = "model.tensors";
    }
    auto indexed = format::index_local_model(dir / file, format::Format::automatic);
    REQUIRE_MESSAGE(indexed.has_value(), indexed.error().message);
    index = std::move(*indexed);
    REQUIRE(index.tensors.size() == expected.size());
  }

  // The same file as a remote source would serve it (bytes pinned in memory).
  RemoteFiles remote(bool written_through) const {
    std::shared_ptr<const io::ByteSource> source = io::MemorySource::owning("https://models.test/" + file,
                                                                            testing::read_file(dir / file));
    return {.sources = {source},
            .cache_dir = written_through ? dir.path() : "", .written_through = written_through};
  }
};

// Device memory through the double, for the duration of a test.
struct CudaDouble {
  CudaDouble() {
    cuda_double::configure({.devices = 1, .copy_delay_us = 0, .abort_on_violation = false});
    cuda_double::reset();
  }
  ~CudaDouble() {
    cuda_double::configure({});
    cuda_double::reset();
  }
};

// What the server would map: the host arena's bytes, or device 0's, copied back.
std::string staged_bytes(const StagedModel& staged) {
  if (staged.target == Target::host) return testing::read_file(staged.arenas.at(0).path());
  const auto& arenas = *std::static_pointer_cast<std::vector<CudaArena>>(staged.device_memory);
  std::string back(arenas.at(0).size(), '\0');
  REQUIRE(cudart::cudaMemcpy(back.data(), arenas[0].data(), back.size(), cudart::kDeviceToHost) == cudart::kSuccess);
  return back;
}

bool empty_dir(const std::string& dir) { return std::filesystem::is_empty(dir); }

}  // namespace

TEST_CASE("stage matrix: each target x local/remote x plain/encrypted/packed/meta") {
  CudaDouble cuda;
  for (Target target : {Target::host, Target::pagecache, Target::cuda, Target::discard})
    for (bool remote : {false, true})
      for (Kind kind : {Kind::plain, Kind::encrypted, Kind::packed, Kind::meta}) {
        const std::string label = std::string(to_string(target)) + (remote ? " remote " : " local ") + name_of(kind);
        INFO(label);
        Model model(kind);
        TempDir shm;
        StageRequest request{.model_name = "matrix", .target = target, .devices = {0},
                             .read = {.readers = 3, .chunk_size = 65536}, .shm_dir = shm.path()};
        request.checks.key = Secret(kKeyHex);
        request.checks.checksums = kind == Kind::encrypted || kind == Kind::meta;
        if (remote) request.remote = model.remote(true);
        std::atomic<uint64_t> progress{0};
        auto staged = stage_model(request, model.index, {}, progress);

        if (target == Target::pagecache && kind != Kind::plain) {  // bytes on disk are not the tensor's
          REQUIRE_FALSE(staged.has_value());
          CHECK(staged.error().code == Code::no_source);
          CHECK(staged.error().message.find(model.file) != std::string::npos);
          CHECK(staged.error().message.find("stage.target pagecache cannot serve") != std::string::npos);
          CHECK(progress.load() == 0);  // refused before any read
          CHECK(empty_dir(shm.path()));
          continue;
        }
        REQUIRE_MESSAGE(staged.has_value(), staged.error().message);
        CHECK(staged->target == target);
        uint64_t tensor_bytes = 0;
        for (const auto& t : model.index.tensors) tensor_bytes += t.zeros ? 0 : t.bytes;
        CHECK(staged->bytes == tensor_bytes);
        CHECK(staged->readers == 3);
        if (target == Target::discard)  // read, verified, decoded, kept nowhere
          CHECK((kind == Kind::packed) == (staged->compressed_bytes > 0));
        if (target == Target::pagecache || target == Target::discard) {
          CHECK(staged->arenas.empty());
          CHECK(staged->device_arenas.empty());
          CHECK(empty_dir(shm.path()));
          continue;
        }
        CHECK((kind == Kind::packed) == (staged->compressed_bytes > 0));
        const std::string bytes = staged_bytes(*staged);
        for (size_t i = 0; i < model.expected.size(); ++i) {
          INFO("tensor " << model.index.tensors[i].name);
          CHECK(bytes.substr(staged->layout.offsets[i], model.expected[i].size()) == model.expected[i]);
        }
        if (target == Target::cuda) {
          REQUIRE(staged->device_arenas.size() == 1);
          CHECK(staged->device_arenas[0].ipc_handle.size() == 128);
        }
      }
  CHECK(cuda_double::violations().empty());
}

TEST_CASE("stage matrix: remote pagecache needs every file written through to model.cache") {
  Model model(Kind::plain);
  TempDir shm;
  StageRequest request{.model_name = "matrix", .target = Target::pagecache, .shm_dir = shm.path()};
  request.remote = model.remote(false);
  std::atomic<uint64_t> progress{0};
  auto staged = stage_model(request, model.index, {}, progress);
  REQUIRE_FALSE(staged.has_value());
  CHECK(staged.error().code == Code::bad_manifest);
  CHECK(staged.error().message.find("needs model.cache") != std::string::npos);

  request.remote->cache_dir = "/cache/matrix";  // configured, but another process fills it
  staged = stage_model(request, model.index, {}, progress);
  REQUIRE_FALSE(staged.has_value());
  CHECK(staged.error().code == Code::unavailable);
  CHECK(staged.error().message.find("/cache/matrix: not every file can be written to the cache") != std::string::npos);
  CHECK(progress.load() == 0);
}

TEST_CASE("stage matrix: auto without a driver stages to host; cuda without one is 69") {
  cuda_double::configure({.devices = -1, .copy_delay_us = 0, .abort_on_violation = false});
  Model model(Kind::plain);
  TempDir shm;
  StageRequest request{.model_name = "matrix", .target = Target::automatic, .shm_dir = shm.path()};
  std::atomic<uint64_t> progress{0};
  auto staged = stage_model(request, model.index, {}, progress);
  REQUIRE_MESSAGE(staged.has_value(), staged.error().message);
  CHECK(staged->target == Target::host);
  staged = {};
  request.target = Target::cuda;
  auto refused = stage_model(request, model.index, {}, progress);
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().code == Code::unavailable);
  CHECK(refused.error().message.find("stage.target is cuda but CUDA is unusable") != std::string::npos);
  CHECK(empty_dir(shm.path()));
  cuda_double::configure({});
}

TEST_CASE("stage matrix: a stop before the first read leaves nothing, on every target") {
  CudaDouble cuda;
  for (Target target : {Target::host, Target::pagecache, Target::cuda, Target::discard}) {
    const std::string label = to_string(target);
    INFO(label);
    Model model(Kind::plain);
    TempDir shm;
    const StageRequest request{.model_name = "matrix", .target = target, .shm_dir = shm.path()};
    std::stop_source stop;
    stop.request_stop();
    std::atomic<uint64_t> progress{0};
    auto staged = stage_model(request, model.index, stop.get_token(), progress);
    REQUIRE_FALSE(staged.has_value());
    CHECK(staged.error().code == Code::stopped);
    CHECK(empty_dir(shm.path()));
    CHECK(cuda_double::stats().live_device_bytes == 0);
  }
  CHECK(cuda_double::violations().empty());
}

}  // namespace tensorinit::stage
