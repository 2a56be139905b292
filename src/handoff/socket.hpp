// The readiness socket ($TENSORINIT_SOCKET): a client connects, blocks until the weights are
// staged, then reads the answer and EOF. Protocol (docs/init.md), one header line, then a body:
//
//   ready <bytes>\n<bytes of the tensor table JSON>        weights are staged
//   error <code> <message>\n                              staging failed / tensorinit stopping
//
// Clients must ignore extra space-separated `key=value` tokens after the known fields of the
// header: they are reserved for later additions (e.g. `fds=N` when CUDA IPC descriptors travel
// with the header by SCM_RIGHTS). The client need not write anything. What it writes is read
// line by line: `ready\n` (tokens after the word ignored) tells tensorinit the server is ready
// (handoff.ready.socket: true), passed to the message handler with the client's pid
// (SO_PEERCRED; 0 for a process outside tensorinit's PID namespace); other lines are ignored.
// A client that goes away while waiting frees its place. After the answer tensorinit shuts down
// its side and reads on until the client closes (so a `ready` written at any time is seen).
//
// Bounded: at most `max_clients` connections are held at once (waiting or being answered); more
// wait in the kernel's listen backlog (their connect blocks) until one goes. An answer not taken
// within `write_timeout` (a client that connected and never reads), or a connection the client
// keeps open that long after its answer, is dropped. Out of descriptors (EMFILE, ENFILE), accepting
// pauses 100 ms, or until a client goes.
//
// Thread-safety: all calls on the io_context's thread.
#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstddef>
#include <functional>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <memory>
#include <string>
#include <sys/types.h>
#include <vector>

#include "util/error.hpp"

namespace tensorinit::handoff {

struct SocketLimits {
  size_t max_clients = 64;
  std::chrono::milliseconds write_timeout{30000};
};

class ReadySocket {
 public:
  // Binds and listens at `path` (a stale socket file there is replaced: the caller owns the
  // model name, stage/name_lock.hpp) and starts accepting.
  static Result<std::unique_ptr<ReadySocket>> listen(boost::asio::io_context& io, std::string path,
                                                     SocketLimits limits = {});
  ~ReadySocket();  // closes every connection and removes the socket file
  ReadySocket(const ReadySocket&) = delete;
  ReadySocket& operator=(const ReadySocket&) = delete;

  // Answers the waiting clients and every later one with the table.
  void ready(std::string table_json);
  // Answers the waiting clients and every later one with the error.
  void fail(int code, std::string_view message);
  // Called for each `ready` line a client writes, with the client's pid.
  void on_ready_message(std::function<void(pid_t peer)> handler) { on_ready_ = std::move(handler); }

  const std::string& path() const { return path_; }
  size_t clients() const { return clients_; }        // connections held now
  size_t waiting() const { return waiting_.size(); }  // of which waiting for the answer

 private:
  struct Client;
  ReadySocket(boost::asio::io_context& io, std::string path, SocketLimits limits);
  void accept_next();
  void watch(std::shared_ptr<Client> client);
  void answer(std::shared_ptr<Client> client);
  void take_lines(const std::shared_ptr<Client>& client, size_t n);
  void drop_waiting(const std::shared_ptr<Client>& client);
  void finish(const std::shared_ptr<Client>& client);
  void release_place();

  boost::asio::io_context& io_;
  std::string path_;
  SocketLimits limits_;
  boost::asio::local::stream_protocol::acceptor acceptor_;
  boost::asio::steady_timer retry_;  // accepting again after EMFILE/ENFILE (no descriptor to be had)
  std::vector<std::shared_ptr<Client>> waiting_;
  std::shared_ptr<const std::string> answer_;  // null until ready or failed
  std::function<void(pid_t)> on_ready_;
  size_t clients_ = 0;
  bool accepting_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // false once destroyed: late handlers
};

}  // namespace tensorinit::handoff
