// Asking the server whether it is ready (handoff.ready http / tcp): a TCP connect, and for http a
// plain HTTP/1.1 GET whose status line must be 2xx. Repeated until it succeeds: the first try at
// once, then every 10 ms doubling to 100 ms (a ready server is seen within 100 ms); each try is
// bounded (1 s, a server that accepts and never answers). Loopback or the pod's network: no TLS,
// no redirects, no proxy; the host is resolved at each try (a name that appears late works).
// Thread-safety: all calls on the io_context's thread.
#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

namespace tensorinit::init {

struct ProbeTarget {
  bool http = false;       // false: connect only
  std::string host;        // name or address
  std::string port;
  std::string path = "/";  // http: sent as the request target
};

class ReadyProbe {
 public:
  // Starts probing at once; `on_ready` is called once, on the loop, when a try succeeds.
  ReadyProbe(boost::asio::io_context& io, ProbeTarget target, std::function<void()> on_ready);
  ~ReadyProbe();  // stops: no call after destruction
  ReadyProbe(const ReadyProbe&) = delete;
  ReadyProbe& operator=(const ReadyProbe&) = delete;

  unsigned tries() const;  // tries made so far (the report: how often it asked)

 private:
  struct State;
  std::shared_ptr<State> state_;
};

// "HTTP/1.1 204 No Content" -> 204; 0 when it is not an HTTP status line. Thread-safe.
int http_status(const std::string& status_line);

}  // namespace tensorinit::init
