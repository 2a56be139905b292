#include "handoff/socket.hpp"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

namespace tensorinit::handoff {

namespace asio = boost::asio;
using asio::local::stream_protocol;

struct ReadySocket::Client {
  explicit Client(asio::io_context& io) : socket(io), timer(io) {}
  stream_protocol::socket socket;
  asio::steady_timer timer;          // bounds the answer's write, then the wait for the client's close
  std::array<char, 256> buffer{};
  std::string line;                  // what the client wrote since its last newline (bounded)
  pid_t peer = 0;                    // SO_PEERCRED
  bool answered = false;
  bool written = false;              // the answer is out
  bool read_done = false;            // the client's side reached EOF (or failed)
  bool closed = false;
};

constexpr size_t kMaxLine = 256;  // longer lines are dropped: the protocol's are a word or two

ReadySocket::ReadySocket(asio::io_context& io, std::string path, SocketLimits limits)
    : io_(io), path_(std::move(path)), limits_(limits), acceptor_(io), retry_(io) {}

Result<std::unique_ptr<ReadySocket>> ReadySocket::listen(asio::io_context& io, std::string path, SocketLimits limits) {
  std::unique_ptr<ReadySocket> socket(new ReadySocket(io, std::move(path), limits));
  if (socket->path_.size() >= sizeof(sockaddr_un{}.sun_path))
    return tensorinit::fail(Code::bad_manifest, "socket path too long (max 107 bytes): " + socket->path_);
  ::unlink(socket->path_.c_str());  // a stale socket from an earlier run
  boost::system::error_code ec;
  socket->acceptor_.open(stream_protocol(), ec);
  if (!ec) socket->acceptor_.bind(stream_protocol::endpoint(socket->path_), ec);
  if (!ec) socket->acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    socket->acceptor_.close();
    return tensorinit::fail(Code::io, "cannot listen on " + socket->path_ + ": " + ec.message());
  }
  socket->accept_next();
  return socket;
}

ReadySocket::~ReadySocket() {
  *alive_ = false;
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  retry_.cancel();
  for (auto& client : waiting_) client->socket.close(ignored);
  ::unlink(path_.c_str());
}

void ReadySocket::accept_next() {
  if (accepting_ || clients_ >= limits_.max_clients) return;  // full: later ones wait in the backlog
  accepting_ = true;
  auto client = std::make_shared<Client>(io_);
  acceptor_.async_accept(client->socket, [this, client, alive = alive_](const boost::system::error_code& ec) {
    if (!*alive || ec == asio::error::operation_aborted) return;  // closed: `this` may be gone
    accepting_ = false;
    if (ec == asio::error::no_descriptors || ec == asio::error::no_buffer_space || ec == asio::error::no_memory ||
        ec.value() == ENFILE) {
      // Out of descriptors (EMFILE, ENFILE) or memory: the listener stays readable, so accepting
      // again at once spun a core (measured: 99 ticks a second at `ulimit -n`). Try again in a
      // while, or as soon as a client goes (release_place).
      retry_.expires_after(std::chrono::milliseconds(100));
      retry_.async_wait([this, alive](const boost::system::error_code& wait_ec) {
        if (!wait_ec && *alive) accept_next();
      });
      return;
    }
    if (!ec) {
      ++clients_;
      ucred cred{};
      socklen_t len = sizeof cred;
      if (::getsockopt(client->socket.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) client->peer = cred.pid;
      if (answer_) {
        answer(client);
      } else {
        waiting_.push_back(client);
      }
      watch(client);
    }
    accept_next();
  });
}

// Reads what a client writes: its lines (`ready`), and when it goes away.
void ReadySocket::watch(std::shared_ptr<Client> client) {
  client->socket.async_read_some(
      asio::buffer(client->buffer), [this, client, alive = alive_](const boost::system::error_code& ec, size_t n) {
        if (!*alive || client->closed) return;
        if (!ec) {
          take_lines(client, n);
          return watch(client);
        }
        client->read_done = true;
        if (client->answered) {
          if (client->written) finish(client);
          return;
        }
        // EOF: gone, or only done writing (shutdown(SHUT_WR), `nc -U` with stdin at EOF): a
        // stream socket whose peer is closed reports POLLHUP; one that only half-closed still waits.
        pollfd p{client->socket.native_handle(), POLLIN, 0};
        const bool hung_up = ec != asio::error::eof || (::poll(&p, 1, 0) == 1 && (p.revents & POLLHUP));
        if (hung_up) drop_waiting(client);
      });
}

void ReadySocket::take_lines(const std::shared_ptr<Client>& client, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    const char c = client->buffer[i];
    if (c != '\n') {
      if (client->line.size() <= kMaxLine) client->line.push_back(c);
      continue;
    }
    std::string line = std::move(client->line);
    client->line.clear();
    if (line.size() > kMaxLine) continue;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const std::string word = line.substr(0, line.find(' '));
    if (word == "ready" && on_ready_) on_ready_(client->peer);
  }
}

void ReadySocket::drop_waiting(const std::shared_ptr<Client>& client) {
  waiting_.erase(std::remove(waiting_.begin(), waiting_.end(), client), waiting_.end());
  finish(client);
}

void ReadySocket::finish(const std::shared_ptr<Client>& client) {
  if (client->closed) return;
  client->closed = true;
  client->timer.cancel();
  boost::system::error_code ignored;
  client->socket.close(ignored);
  release_place();
}

void ReadySocket::release_place() {
  if (clients_ > 0) --clients_;
  accept_next();
}

void ReadySocket::answer(std::shared_ptr<Client> client) {
  // The handlers keep the socket and the answer alive until the write completes; a client that
  // went away gets EPIPE (asio sends with MSG_NOSIGNAL: no SIGPIPE to forward by mistake).
  client->answered = true;
  client->timer.expires_after(limits_.write_timeout);
  client->timer.async_wait([this, client, alive = alive_](const boost::system::error_code& ec) {
    if (!ec && *alive) finish(client);  // never read its answer, or never closed: dropped
  });
  auto body = answer_;
  asio::async_write(client->socket, asio::buffer(*body),
                    [this, client, body, alive = alive_](const boost::system::error_code& ec, size_t) {
                      if (!*alive || client->closed) return;
                      client->written = true;
                      boost::system::error_code ignored;
                      client->socket.shutdown(stream_protocol::socket::shutdown_send, ignored);
                      if (ec || client->read_done) finish(client);  // else read on until it closes
                    });
}

void ReadySocket::ready(std::string table_json) {
  if (answer_) return;
  auto text = std::make_shared<std::string>("ready " + std::to_string(table_json.size()) + "\n");
  text->append(table_json);
  answer_ = std::move(text);
  for (auto& client : waiting_) answer(client);
  waiting_.clear();
}

void ReadySocket::fail(int code, std::string_view message) {
  if (answer_) return;
  std::string line = "error " + std::to_string(code) + " ";
  for (char c : message) line.push_back(c == '\n' ? ' ' : c);
  line.push_back('\n');
  answer_ = std::make_shared<std::string>(std::move(line));
  for (auto& client : waiting_) answer(client);
  waiting_.clear();
}

}  // namespace tensorinit::handoff
