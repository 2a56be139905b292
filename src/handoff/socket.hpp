// The readiness socket ($TENSORINIT_SOCKET): a client connects, blocks until the weights are
// staged, then reads the answer and EOF. Protocol (docs/init.md), one header line, then a body:
//
//   ready <bytes>\n<bytes of the tensor table JSON>        weights are staged
//   error <code> <message>\n                              staging failed / tensorinit stopping
//
// Clients must ignore extra space-separated `key=value` tokens after the known fields of the
// header: they are reserved for later additions (e.g. `fds=N` when CUDA IPC descriptors travel
// with the header by SCM_RIGHTS). The client need not write anything.
//
// Thread-safety: all calls on the io_context's thread.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <memory>
#include <string>
#include <vector>

#include "util/error.hpp"

namespace tensorinit::handoff {

class ReadySocket {
 public:
  // Binds and listens at `path` (a stale socket file there is replaced) and starts accepting.
  static Result<std::unique_ptr<ReadySocket>> listen(boost::asio::io_context& io, std::string path);
  ~ReadySocket();  // closes every connection and removes the socket file
  ReadySocket(const ReadySocket&) = delete;
  ReadySocket& operator=(const ReadySocket&) = delete;

  // Answers the waiting clients and every later one with the table.
  void ready(std::string table_json);
  // Answers the waiting clients and every later one with the error.
  void fail(int code, std::string_view message);

  const std::string& path() const { return path_; }

 private:
  using Socket = boost::asio::local::stream_protocol::socket;
  ReadySocket(boost::asio::io_context& io, std::string path);
  void accept_next();
  void answer(std::shared_ptr<Socket> client);

  boost::asio::io_context& io_;
  std::string path_;
  boost::asio::local::stream_protocol::acceptor acceptor_;
  std::vector<std::shared_ptr<Socket>> waiting_;
  std::shared_ptr<const std::string> answer_;  // null until ready or failed
};

}  // namespace tensorinit::handoff
