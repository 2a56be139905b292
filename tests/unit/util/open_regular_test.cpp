// open_for_reading: a FIFO fails the regular-file check at once; a file under a lease is opened
// once the lease's holder releases it (with O_NONBLOCK alone the open failed EWOULDBLOCK, and the
// start with it: 66, "Resource temporarily unavailable").
#include "util/open_regular.hpp"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "../lease_holder.hpp"
#include "../scratch_dir.hpp"
#include "util/atomic_file.hpp"

namespace tensorinit {
namespace {

using testing::LeaseHolder;
using testing::ScratchDir;

TEST_CASE("open_for_reading: a file under a lease is opened once its holder releases it (it was EWOULDBLOCK)") {
  ScratchDir dir;
  const std::string path = dir / "weights.bin";
  std::ofstream(path) << "leased bytes";
  LeaseHolder holder(path);
  if (!holder.held()) {
    MESSAGE("no write lease could be taken here (fs.leases-enable 0?): nothing to check");
    return;
  }
  struct stat st {};
  UniqueFd fd = open_for_reading(path, st);
  REQUIRE(fd);
  CHECK(S_ISREG(st.st_mode));
  CHECK((::fcntl(fd.get(), F_GETFL) & O_NONBLOCK) == 0);
  char buffer[32] = {};
  CHECK(::read(fd.get(), buffer, sizeof buffer) == 12);
  CHECK(std::string(buffer) == "leased bytes");
  CHECK(holder.released());
  fd.reset();  // a write lease is taken only on a file nobody else has open

  LeaseHolder again(path);  // read_whole_file (the table, a record) the same way
  REQUIRE(again.held());
  auto text = read_whole_file(path, "table");
  REQUIRE(text);
  CHECK(*text == "leased bytes");
  CHECK(again.released());
}

TEST_CASE("open_for_reading: a FIFO is opened without waiting for a writer and is not a regular file") {
  ScratchDir dir;
  const std::string path = dir / "fifo";
  REQUIRE(::mkfifo(path.c_str(), 0600) == 0);
  struct stat st {};
  UniqueFd fd = open_for_reading(path, st);
  REQUIRE(fd);
  CHECK(S_ISFIFO(st.st_mode));
  CHECK_FALSE(read_whole_file(path, "table"));
  struct stat none {};
  CHECK_FALSE(open_for_reading(dir / "missing", none));
  CHECK(errno == ENOENT);
}

}  // namespace
}  // namespace tensorinit
