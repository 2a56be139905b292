// The ready socket holds a bounded number of clients: those that go away free their place, one
// that never reads its answer is dropped after the write timeout, the rest are answered.
#include <doctest/doctest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "../scratch_dir.hpp"
#include "handoff/socket.hpp"

namespace {

namespace fs = std::filesystem;
using namespace tensorinit;
using namespace std::chrono_literals;
using tensorinit::testing::ScratchDir;

// A blocking client; the kernel completes connect from the backlog even while not accepted.
int connect_to(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  path.copy(addr.sun_path, sizeof addr.sun_path - 1);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  return fd;
}

std::string read_all(int fd) {
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  return out;
}

// Runs handlers until `done` (events, not time: the bound is only against a hang).
bool run_until(boost::asio::io_context& io, const std::function<bool()>& done) {
  const auto give_up = std::chrono::steady_clock::now() + 60s;
  while (!done() && std::chrono::steady_clock::now() < give_up) {
    io.restart();
    io.run_one_for(100ms);
  }
  return done();
}

}  // namespace

TEST_CASE("the ready socket holds at most max_clients; one that leaves frees its place") {
  ScratchDir dir;
  boost::asio::io_context io;
  auto socket = handoff::ReadySocket::listen(io, (dir.path / "s.sock").string(), {.max_clients = 2});
  REQUIRE(socket);
  auto& s = **socket;
  const int a = connect_to(s.path());
  const int b = connect_to(s.path());
  REQUIRE(run_until(io, [&] { return s.waiting() == 2; }));
  const int c = connect_to(s.path());  // in the backlog: not taken while two are held
  for (int i = 0; i < 20; ++i) {
    io.restart();
    io.poll();
  }
  CHECK(s.clients() == 2);
  ::close(a);  // gone while waiting: its place goes to c
  REQUIRE(run_until(io, [&] { return s.waiting() == 1; }));
  REQUIRE(run_until(io, [&] { return s.waiting() == 2; }));
  CHECK(s.clients() == 2);
  ::shutdown(c, SHUT_WR);  // done writing (nc -U with stdin at EOF) but still waiting: kept
  for (int i = 0; i < 20; ++i) {
    io.restart();
    io.poll();
  }
  CHECK(s.waiting() == 2);
  s.ready("{}");
  REQUIRE(run_until(io, [&] { return s.clients() == 0; }));
  CHECK(read_all(b) == "ready 2\n{}");
  CHECK(read_all(c) == "ready 2\n{}");
  ::close(b);
  ::close(c);
}

TEST_CASE("an answer the client never reads is dropped after the write timeout") {
  ScratchDir dir;
  boost::asio::io_context io;
  auto socket = handoff::ReadySocket::listen(io, (dir.path / "s.sock").string(),
                                             {.max_clients = 1, .write_timeout = 50ms});
  REQUIRE(socket);
  auto& s = **socket;
  const int idle = connect_to(s.path());
  REQUIRE(run_until(io, [&] { return s.waiting() == 1; }));
  s.ready(std::string(16 << 20, 'x'));  // far more than a socket buffer
  REQUIRE(run_until(io, [&] { return s.clients() == 0; }));
  const int late = connect_to(s.path());  // the place is free again; the answer is still there
  REQUIRE(run_until(io, [&] { return s.clients() == 1; }));
  CHECK(s.waiting() == 0);
  // (not read here: 16 MiB; the timeout ends it)
  REQUIRE(run_until(io, [&] { return s.clients() == 0; }));
  ::close(idle);
  ::close(late);
}

TEST_CASE("a failure reaches waiting and later clients as one error line") {
  ScratchDir dir;
  boost::asio::io_context io;
  auto socket = handoff::ReadySocket::listen(io, (dir.path / "s.sock").string());
  REQUIRE(socket);
  auto& s = **socket;
  const int a = connect_to(s.path());
  REQUIRE(run_until(io, [&] { return s.waiting() == 1; }));
  s.fail(69, "model.name in use\nby another");
  REQUIRE(run_until(io, [&] { return s.clients() == 0; }));
  CHECK(read_all(a) == "error 69 model.name in use by another\n");
  const int b = connect_to(s.path());
  REQUIRE(run_until(io, [&] { return s.clients() == 1; }));  // answered at once, not waiting
  CHECK(s.waiting() == 0);
  REQUIRE(run_until(io, [&] { return s.clients() == 0; }));
  CHECK(read_all(b) == "error 69 model.name in use by another\n");
  ::close(a);
  ::close(b);
}

TEST_CASE("each `ready` line a client writes reaches the handler once, with the client's pid") {
  ScratchDir dir;
  boost::asio::io_context io;
  auto socket = handoff::ReadySocket::listen(io, (dir.path / "s.sock").string());
  REQUIRE(socket);
  auto& s = **socket;
  std::vector<pid_t> peers;
  s.on_ready_message([&](pid_t peer) { peers.push_back(peer); });
  const int a = connect_to(s.path());
  REQUIRE(run_until(io, [&] { return s.waiting() == 1; }));
  // Ignored: another word, a word that only starts with ready, a line over 256 bytes, a line
  // without its newline yet. Taken: `ready` with tokens after it, with \r\n, split over writes.
  const std::string lines = "hello\nreadyx\nready " + std::string(300, 'x') + "\nready fds=1\nready\r\nrea";
  REQUIRE(::write(a, lines.data(), lines.size()) == static_cast<ssize_t>(lines.size()));
  REQUIRE(run_until(io, [&] { return peers.size() == 2; }));
  REQUIRE(::write(a, "dy\n", 3) == 3);
  REQUIRE(run_until(io, [&] { return peers.size() == 3; }));
  CHECK(peers == std::vector<pid_t>(3, ::getpid()));
  CHECK(s.waiting() == 1);  // the ready lines did not stand for the weights: still waiting
  s.ready("{}");
  ::shutdown(a, SHUT_WR);
  REQUIRE(run_until(io, [&] { return s.clients() == 0; }));
  CHECK(read_all(a) == "ready 2\n{}");
  ::close(a);
}

TEST_CASE("listen replaces a stale socket file, the socket goes with its owner, a long path is refused") {
  ScratchDir dir;
  const std::string path = (dir.path / "s.sock").string();
  std::ofstream(path) << "stale";
  {
    boost::asio::io_context io;
    auto socket = handoff::ReadySocket::listen(io, path);
    REQUIRE(socket);
    CHECK(fs::is_socket(path));
  }
  CHECK(!fs::exists(path));
  boost::asio::io_context io;
  auto too_long = handoff::ReadySocket::listen(io, (dir.path / std::string(120, 's')).string());
  REQUIRE(!too_long);
  CHECK(too_long.error().code == Code::bad_manifest);
}
