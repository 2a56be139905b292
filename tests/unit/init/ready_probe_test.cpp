// The ready probe: the status line parser, and tries against real loopback listeners.
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <string>
#include <thread>

#include "init/ready_probe.hpp"

namespace {

using tensorinit::init::http_status;
using tensorinit::init::ProbeTarget;
using tensorinit::init::ReadyProbe;

// A listening loopback socket on a free port; answers each connection with `reply` (if any).
struct Listener {
  int fd = -1;
  int port = 0;
  Listener() {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
    ::listen(fd, 16);
  }
  ~Listener() { ::close(fd); }
  // Accepts `n` connections in turn, answering the i-th with replies[i].
  std::thread serve(std::vector<std::string> replies) {
    return std::thread([this, replies] {
      for (const auto& reply : replies) {
        int c = ::accept(fd, nullptr, nullptr);
        if (c < 0) return;
        char buf[1024];
        (void)!::read(c, buf, sizeof buf);
        (void)!::write(c, reply.data(), reply.size());
        ::close(c);
      }
    });
  }
};

}  // namespace

TEST_CASE("http_status reads HTTP/1.x status lines only") {
  CHECK(http_status("HTTP/1.1 200 OK\r") == 200);
  CHECK(http_status("HTTP/1.0 204") == 204);
  CHECK(http_status("HTTP/1.1 503 Service Unavailable") == 503);
  CHECK(http_status("HTTP/2 200") == 0);
  CHECK(http_status("HTTP/1.1 2000") == 0);
  CHECK(http_status("garbage") == 0);
  CHECK(http_status("") == 0);
}

TEST_CASE("the http probe tries again after 503 and a wrong answer, and is ready at 200") {
  Listener l;
  std::thread server = l.serve({"HTTP/1.1 503 Busy\r\n\r\n", "nonsense\n", "HTTP/1.1 200 OK\r\n\r\n"});
  boost::asio::io_context io;
  bool ready = false;
  ReadyProbe probe(io, ProbeTarget{.http = true, .host = "127.0.0.1", .port = std::to_string(l.port), .path = "/h"},
                   [&] {
                     ready = true;
                     io.stop();
                   });
  io.run();
  server.join();
  CHECK(ready);
  CHECK(probe.tries() == 3);
}

TEST_CASE("the tcp probe is ready at the first connect; a closed port is tried again") {
  boost::asio::io_context io;
  Listener l;
  bool ready = false;
  ReadyProbe probe(io, ProbeTarget{.http = false, .host = "127.0.0.1", .port = std::to_string(l.port)}, [&] {
    ready = true;
    io.stop();
  });
  io.run();
  CHECK(ready);
  CHECK(probe.tries() == 1);
}
