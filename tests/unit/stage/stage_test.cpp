// stage_model over real files in a temp directory (the host arena in a temp directory too): the
// bytes staged are the bytes indexed. A file rewritten in place after indexing is refused (65)
// with nothing left behind; a same-size file renamed over the path (a flipped `current` symlink)
// does not change what is staged, but target pagecache, whose server opens the path, refuses it.
// A header declaring more than the target can hold fails on the target's room, before the read
// plan (one entry per chunk) is built.
#include "stage/stage.hpp"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "../format/test_files.hpp"
#include "format/model_files.hpp"
#include "format/safetensors_writer.hpp"

namespace tensorinit::stage {
namespace {

using testing::TempDir;
using testing::write_file;

// A safetensors file of F32 tensors "a" [n] and "b" [n], data filled with `fill`.
std::string model_bytes(char fill, uint64_t n = 1024) {
  return format::safetensors_head({{"a", "F32", {n}, 4 * n}, {"b", "F32", {n}, 4 * n}}, {}) +
         std::string(8 * n, fill);
}

StageRequest request_for(Target target) {
  return {.model_name = "stage-test", .target = target, .read = {.readers = 2, .chunk_size = 4096}};
}

// A rewrite in place, dated back so that the change shows whatever the timestamp granularity.
void rewrite_in_place(const std::string& path, const std::string& bytes) {
  write_file(path, bytes);
  const timespec times[2] = {{0, UTIME_OMIT}, {1'000'000, 0}};
  REQUIRE(::utimensat(AT_FDCWD, path.c_str(), times, 0) == 0);
}

// <dir>/current -> v1 holding model.safetensors; returns <dir>/current.
std::string versions(const TempDir& dir, const std::string& bytes) {
  std::filesystem::create_directory(dir / "v1");
  write_file(dir / "v1/model.safetensors", bytes);
  std::filesystem::create_directory_symlink("v1", dir / "current");
  return dir / "current";
}

// A new version in v2, and `current` flipped to it atomically (the indexed file stays untouched;
// a rename over the file itself would unlink it, move its ctime, and be refused as changed).
void flip_current(const TempDir& dir, const std::string& bytes) {
  std::filesystem::create_directory(dir / "v2");
  write_file(dir / "v2/model.safetensors", bytes);
  std::filesystem::create_directory_symlink("v2", dir / "next");
  std::filesystem::rename(dir / "next", dir / "current");
}

bool empty_dir(const std::string& dir) { return std::filesystem::is_empty(dir); }

Result<StagedModel> stage(StageRequest request, const format::ModelIndex& index, const std::string& shm) {
  std::atomic<uint64_t> progress{0};
  request.shm_dir = shm;
  return stage_model(request, index, {}, progress);
}

}  // namespace

TEST_CASE("stage: a flipped `current` symlink after indexing: host stages the indexed bytes") {
  TempDir dir, shm;
  const std::string old_bytes = model_bytes('\x11');
  const std::string current = versions(dir, old_bytes);
  auto index = format::index_local_model(current, format::Format::automatic);
  REQUIRE_MESSAGE(index.has_value(), index.error().message);
  flip_current(dir, model_bytes('\x22'));  // same size, same header, other bytes

  auto staged = stage(request_for(Target::host), *index, shm.path());
  REQUIRE_MESSAGE(staged.has_value(), staged.error().message);
  const std::string arena = testing::read_file(staged->arenas.at(0).path());
  const uint64_t data = old_bytes.size() - 8192;
  CHECK(arena.substr(staged->layout.offsets[0], 4096) == old_bytes.substr(data, 4096));
  CHECK(arena.substr(staged->layout.offsets[1], 4096) == old_bytes.substr(data + 4096, 4096));
}

TEST_CASE("stage: pagecache refuses a path that names another file by now") {
  TempDir dir, shm;
  const std::string current = versions(dir, model_bytes('\x11'));
  auto index = format::index_local_model(current, format::Format::automatic);
  REQUIRE_MESSAGE(index.has_value(), index.error().message);
  flip_current(dir, model_bytes('\x22'));

  auto staged = stage(request_for(Target::pagecache), *index, shm.path());
  REQUIRE_FALSE(staged.has_value());
  CHECK(staged.error().code == Code::bad_data);
  CHECK(staged.error().message.find(current + "/model.safetensors") != std::string::npos);
  CHECK(staged.error().message.find("no longer names the file") != std::string::npos);
}

TEST_CASE("stage: a file rewritten in place after indexing is refused, nothing left behind") {
  for (auto target : {Target::host, Target::pagecache}) {
    INFO("target " << to_string(target));
    TempDir dir, shm;
    write_file(dir / "model.safetensors", model_bytes('\x11'));
    auto index = format::index_local_model(dir.path(), format::Format::automatic);
    REQUIRE_MESSAGE(index.has_value(), index.error().message);
    rewrite_in_place(dir / "model.safetensors", model_bytes('\x22'));

    auto staged = stage(request_for(target), *index, shm.path());
    REQUIRE_FALSE(staged.has_value());
    CHECK(staged.error().code == Code::bad_data);
    CHECK(staged.error().message.find(dir / "model.safetensors") != std::string::npos);
    CHECK(staged.error().message.find("changed") != std::string::npos);
    CHECK(empty_dir(shm.path()));
  }
}

TEST_CASE("stage: a header declaring 1 TiB fails on the host arena's room, before the read plan") {
  TempDir dir, shm;
  constexpr uint64_t kTiB = 1ull << 40;
  const std::string head = format::safetensors_head({{"huge", "U8", {kTiB}, kTiB}}, {});
  write_file(dir / "model.safetensors", head);
  REQUIRE(::truncate((dir / "model.safetensors").c_str(), static_cast<off_t>(head.size() + kTiB)) == 0);  // sparse
  auto index = format::index_local_model(dir.path(), format::Format::automatic);
  REQUIRE_MESSAGE(index.has_value(), index.error().message);
  // 4 KiB chunks: the plan of 1 TiB would be 2^28 chunks and pieces (about 15 GB) if built first.
  auto staged = stage(request_for(Target::host), *index, shm.path());
  REQUIRE_FALSE(staged.has_value());
  CHECK(staged.error().code == Code::io);
  CHECK(staged.error().message.find("1.00 TiB") != std::string::npos);
  CHECK(empty_dir(shm.path()));

  staged = stage(request_for(Target::pagecache), *index, shm.path());
  REQUIRE_FALSE(staged.has_value());
  CHECK(staged.error().code == Code::io);
  CHECK(staged.error().message.find("page cache cannot hold it") != std::string::npos);
}

}  // namespace tensorinit::stage
