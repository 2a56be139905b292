// The cache record: written atomically, read back equal; absent is no_source, anything that is
// not a record (garbage, a missing field, a huge file) is bad_data; removal untrusts the file.
#include "io/cache_record.hpp"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include "../format/test_files.hpp"

using namespace tensorinit;
using testing::TempDir;

TEST_CASE("io: a cache record round-trips and is removed") {
  TempDir dir;
  const std::string file = dir / "a.safetensors";
  CHECK(io::cache_record_path(file) == file + ".tensorinit.json");
  CHECK(io::read_cache_record(file).error().code == Code::no_source);
  const io::CacheRecord record{"https://h/m/a.safetensors", "\"e\\\"tag\"", 123456789012ull};
  REQUIRE(io::write_cache_record(file, record));
  auto read = io::read_cache_record(file);
  REQUIRE(read);
  CHECK(*read == record);
  io::remove_cache_record(file);
  CHECK(io::read_cache_record(file).error().code == Code::no_source);
  io::remove_cache_record(file);  // none: nothing happens
}

TEST_CASE("io: what is not a cache record is bad data") {
  TempDir dir;
  const std::string file = dir / "a.safetensors";
  for (std::string text : {std::string("not json"), std::string(R"({"url":"u","size":3})"),
                           std::string(R"({"url":"u","etag":"e","size":"3"})"), std::string(R"([1,2])"),
                           R"({"url":")" + std::string(40'000, 'x') + R"(","etag":"","size":1})"}) {
    std::ofstream(io::cache_record_path(file), std::ios::trunc) << text;
    auto read = io::read_cache_record(file);
    REQUIRE_FALSE(read);
    CHECK(read.error().code == Code::bad_data);
  }
}

// A FIFO under the record's name (planted by anyone who can write the shared cache volume) held
// the start in open() until someone wrote it, with every signal blocked: `load` ignored SIGTERM
// and `run` never reached the server (test_attack9_cache_fifo.sh). Here a writer is ready, so
// before the fix the record was read from the FIFO and trusted; now it is refused at once.
TEST_CASE("io: a FIFO under a cache record's name is not a record, and is not waited on") {
  TempDir dir;
  const std::string file = dir / "a.safetensors";
  const std::string fifo = io::cache_record_path(file);
  REQUIRE(::mkfifo(fifo.c_str(), 0644) == 0);
  std::thread writer([&] {  // blocks in open until a reader comes, then writes a valid record
    sigset_t pipe;  // a reader gone first: EPIPE here, not SIGPIPE for the test binary
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
    const int fd = ::open(fifo.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return;
    const std::string record = R"({"url":"https://h/a.safetensors","etag":"","size":1})";
    [[maybe_unused]] const ssize_t n = ::write(fd, record.data(), record.size());
    ::close(fd);
  });
  auto read = io::read_cache_record(file);
  CHECK(!read);
  if (!read) CHECK(read.error().code == Code::bad_data);
  const int unblock = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK);  // lets the writer's open finish
  writer.join();
  if (unblock >= 0) ::close(unblock);
}
