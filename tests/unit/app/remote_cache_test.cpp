// The write-through cache shared by replicas: whichever replica records the last file writes the
// shard index, however the files were split between them and in whatever order they finish.
#include "app/remote_cache.hpp"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <condition_variable>
#include <filesystem>
#include <fmt/format.h>
#include <mutex>
#include <thread>

#include "format/formats.hpp"
#include "format/shard_index.hpp"
#include "io/cache_record.hpp"
#include "io/memory_source.hpp"
#include "../format/test_files.hpp"
#include "../stage/fake_source.hpp"

namespace {

namespace fs = std::filesystem;
using namespace tensorinit;

using testing::read_file;
using testing::TempDir;

const std::vector<std::string> kNames = {"s1.safetensors", "s2.safetensors", "s3.safetensors"};
const std::string kIndex = R"({"weight_map":{"a":"s1.safetensors","b":"s2.safetensors","c":"s3.safetensors"}})";

// Shard i: one U8 tensor named as kIndex maps it ("a", "b", "c"), so that a copy can be checked
// against the index (app/remote_cache.cpp, same_tensors).
std::string contents(size_t i) {
  const size_t n = 100'000 + 7 * i;
  const std::string header = fmt::format(R"({{"{}":{{"dtype":"U8","shape":[{}],"data_offsets":[0,{}]}}}})",
                                         static_cast<char>('a' + i), n, n);
  return testing::raw_safetensors(header, std::string(n, static_cast<char>('a' + i)));
}

// A source whose first read waits until the test opens the gate: holds one replica inside its
// commit while another replica commits (no sleeps: both sides wait on the other's event).
class GateSource final : public io::ByteSource {
 public:
  explicit GateSource(std::string bytes) : bytes_(std::move(bytes)), inner_("gate", bytes_) {}
  uint64_t size() const override { return inner_.size(); }
  const std::string& name() const override { return inner_.name(); }
  Status read_at(uint64_t offset, std::span<std::byte> out) const override {
    std::unique_lock lock(mutex_);
    entered_ = true;
    changed_.notify_all();
    changed_.wait(lock, [&] { return open_; });
    return inner_.read_at(offset, out);
  }
  void wait_entered() const {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return entered_; });
  }
  void open() const {
    std::lock_guard lock(mutex_);
    open_ = true;
    changed_.notify_all();
  }

 private:
  std::string bytes_;
  io::MemorySource inner_;
  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  mutable bool entered_ = false, open_ = false;
};

// One replica's view of the remote model: the same files, versions and index as every other's.
std::shared_ptr<plan::RemoteModel> remote_model(std::shared_ptr<const io::ByteSource> gated = nullptr,
                                                size_t gated_file = 0) {
  auto model = std::make_shared<plan::RemoteModel>();
  for (size_t i = 0; i < kNames.size(); ++i) {
    std::shared_ptr<const io::ByteSource> source = gated;
    if (!gated || i != gated_file) source = io::MemorySource::owning(kNames[i], contents(i));
    model->files.push_back({kNames[i], "http://h/m/" + kNames[i], "\"v1\"", source});
    const std::string held = contents(i);  // outlives `bytes`, which only views it
    const io::MemorySource bytes(kNames[i], held);  // the gated one is not read here
    REQUIRE(format::add_weight_file(model->index, bytes, {.path = model->files.back().url, .size = bytes.size()},
                                    format::Format::safetensors));
  }
  model->shard_index = kIndex;
  model->shard_index_url = "http://h/m/model.safetensors.index.json";
  return model;
}

// Holds a file's fill lock, as another replica would.
struct HeldLock {
  explicit HeldLock(const fs::path& file)
      : fd(::open((file.string() + ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644)) {
    REQUIRE(fd >= 0);
    REQUIRE(::flock(fd, LOCK_EX | LOCK_NB) == 0);
  }
  ~HeldLock() { ::close(fd); }
  int fd;
};

void check_whole_cache(const fs::path& dir) {
  for (size_t i = 0; i < kNames.size(); ++i) {
    CHECK(read_file((dir / kNames[i]).string()) == contents(i));
    CHECK(io::read_cache_record((dir / kNames[i]).string()));
  }
  const fs::path index = dir / format::kShardIndexName;
  CHECK(read_file(index.string()) == kIndex);
  auto record = io::read_cache_record(index.string());
  REQUIRE(record);
  CHECK(record->size == kIndex.size());
}

}  // namespace

TEST_CASE("remote cache: two replicas splitting the files, the one committing last writes the index") {
  // Replica A fills s1 and s3, replica B fills s2. A records s1, then waits inside s3's commit
  // while B commits s2 (and sees s3 unfinished); then A finishes s3. Only A, after all its own
  // commits, can see every file recorded: it must write the index. (Before the fix A looked at s2
  // between its commits, before B had recorded it, and no replica wrote the index.)
  TempDir dir;
  const fs::path cache = dir / "m";
  fs::create_directories(cache);
  auto gate = std::make_shared<GateSource>(contents(2));
  std::optional<app::RemoteCache> a, b;
  {
    HeldLock s2(cache / kNames[1]);
    a.emplace(remote_model(gate, 2), cache.string());
  }
  b.emplace(remote_model(), cache.string());
  CHECK_FALSE(a->filling_all());
  CHECK_FALSE(b->filling_all());
  bool a_whole = false;
  std::thread a_commit([&] { a_whole = a->commit(); });
  gate->wait_entered();  // A recorded s1 and is filling s3
  CHECK(io::read_cache_record((cache / kNames[0]).string()));
  const bool b_whole = b->commit();
  gate->open();
  a_commit.join();
  CHECK_FALSE(b_whole);  // s3 was not recorded yet when B looked
  CHECK(a_whole);
  check_whole_cache(cache);
}

TEST_CASE("remote cache: a replica that filled nothing writes the index once the others are done") {
  TempDir dir;
  const fs::path cache = dir / "m";
  std::optional<app::RemoteCache> a, b;
  a.emplace(remote_model(), cache.string());
  b.emplace(remote_model(), cache.string());  // every lock is A's: B reads from remote only
  CHECK(a->filling_all());
  CHECK_FALSE(b->filling_all());
  CHECK_FALSE(b->commit());  // nothing recorded yet
  CHECK(a->commit());
  check_whole_cache(cache);
  // A's locks released, the index is not written again: its record stays (a reader never finds
  // the cache untrusted for a moment).
  a.reset();
  const auto written = fs::last_write_time(cache / (std::string(format::kShardIndexName) + ".tensorinit.json"));
  CHECK(b->commit());
  CHECK(fs::last_write_time(cache / (std::string(format::kShardIndexName) + ".tensorinit.json")) == written);
  check_whole_cache(cache);
}

TEST_CASE("remote cache: a file that fails to fill leaves no index") {
  TempDir dir;
  const fs::path cache = dir / "m";
  auto model = remote_model();
  auto failing = std::make_shared<testing::FakeSource>("s2", 50'000);
  failing->fail_at = 20'000;
  model->files[1].source = failing;
  app::RemoteCache a(model, cache.string());
  CHECK_FALSE(a.commit());
  CHECK(io::read_cache_record((cache / kNames[0]).string()));
  CHECK_FALSE(io::read_cache_record((cache / kNames[1]).string()));
  CHECK_FALSE(fs::exists(cache / format::kShardIndexName));
}

TEST_CASE("remote cache: a copy another replica filled, replaced by a same-size one before it is opened, is refused") {
  // B filled nothing; A filled and recorded every file. Between B's commit (every record there)
  // and B's open of the copies, a replica of another version refills s1: it removes the record,
  // renames a copy of the same size over it, then records it with its own ETag. Before, B checked
  // only the size and served that copy with its table (attack9 left this window untested).
  TempDir dir;
  const fs::path cache = dir / "m";
  std::optional<app::RemoteCache> a, b;
  a.emplace(remote_model(), cache.string());
  b.emplace(remote_model(), cache.string());
  REQUIRE(a->commit());
  a.reset();
  REQUIRE(b->commit());
  REQUIRE(b->open_copies());  // unchanged: opened
  const std::string path = (cache / kNames[0]).string();
  std::string other = contents(0);
  other.back() = 'z';  // the same size and header, other bytes
  io::remove_cache_record(path);
  testing::write_file(path + ".other", other);
  fs::rename(path + ".other", path);
  auto during = b->open_copies();  // the refill has not recorded it yet
  REQUIRE_FALSE(during);
  CHECK(during.error().code == Code::bad_data);
  REQUIRE(io::write_cache_record(path, {.url = "http://h/m/" + kNames[0], .etag = "\"v2\"", .size = other.size()}));
  auto after = b->open_copies();  // recorded under another ETag
  REQUIRE_FALSE(after);
  CHECK(after.error().code == Code::bad_data);
}
