#include "handoff/socket.hpp"

#include <unistd.h>

#include <boost/asio/write.hpp>

namespace tensorinit::handoff {

namespace asio = boost::asio;
using asio::local::stream_protocol;

ReadySocket::ReadySocket(asio::io_context& io, std::string path)
    : io_(io), path_(std::move(path)), acceptor_(io) {}

Result<std::unique_ptr<ReadySocket>> ReadySocket::listen(asio::io_context& io, std::string path) {
  std::unique_ptr<ReadySocket> socket(new ReadySocket(io, std::move(path)));
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
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  for (auto& client : waiting_) client->close(ignored);
  ::unlink(path_.c_str());
}

void ReadySocket::accept_next() {
  auto client = std::make_shared<Socket>(io_);
  acceptor_.async_accept(*client, [this, client](const boost::system::error_code& ec) {
    if (ec == asio::error::operation_aborted) return;  // closed: `this` may be gone
    if (!ec) {
      if (answer_) {
        answer(client);
      } else {
        waiting_.push_back(client);
      }
    }
    accept_next();
  });
}

void ReadySocket::answer(std::shared_ptr<Socket> client) {
  // The lambda keeps the socket and the answer alive until the write completes; a client that
  // went away gets EPIPE (asio sends with MSG_NOSIGNAL: no SIGPIPE to forward by mistake).
  auto body = answer_;
  asio::async_write(*client, asio::buffer(*body),
                    [client, body](const boost::system::error_code&, size_t) {
                      boost::system::error_code ignored;
                      client->shutdown(Socket::shutdown_both, ignored);
                      client->close(ignored);
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
