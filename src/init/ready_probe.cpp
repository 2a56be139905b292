#include "init/ready_probe.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <istream>

namespace tensorinit::init {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::chrono_literals;

constexpr auto kFirstInterval = 10ms;
constexpr auto kMaxInterval = 100ms;
constexpr auto kTryTimeout = 1s;
// A status line longer than this fails the try: a health endpoint streaming bytes without a newline
// would otherwise grow tensorinit's memory at loopback speed for a whole try (test_attack_restart).
constexpr size_t kMaxStatusLine = 64 << 10;

int http_status(const std::string& line) {
  // "HTTP/1.x NNN ..." (HTTP/1.0 servers answer too).
  if (line.size() < 12 || line.compare(0, 7, "HTTP/1.") != 0 || line[8] != ' ') return 0;
  int code = 0;
  for (size_t i = 9; i < 12; ++i) {
    if (line[i] < '0' || line[i] > '9') return 0;
    code = code * 10 + (line[i] - '0');
  }
  return line.size() == 12 || line[12] == ' ' || line[12] == '\r' ? code : 0;
}

// One try at a time: resolve, connect, (http) write the request and read the status line.
struct ReadyProbe::State : std::enable_shared_from_this<State> {
  State(asio::io_context& io, ProbeTarget t, std::function<void()> cb)
      : target(std::move(t)), on_ready(std::move(cb)), resolver(io), socket(io), deadline(io), pause(io),
        response(kMaxStatusLine) {}

  ProbeTarget target;
  std::function<void()> on_ready;
  tcp::resolver resolver;
  tcp::socket socket;
  asio::steady_timer deadline;  // bounds one try
  asio::steady_timer pause;     // between tries
  asio::streambuf response;
  std::string request;
  std::chrono::milliseconds interval = kFirstInterval;
  unsigned tries = 0;
  bool stopped = false;

  void start_try() {
    if (stopped) return;
    ++tries;
    deadline.expires_after(kTryTimeout);
    deadline.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (ec || self->stopped) return;
      boost::system::error_code ignored;
      self->resolver.cancel();
      self->socket.close(ignored);  // the pending operation ends with an error: the try failed
    });
    resolver.async_resolve(target.host, target.port,
                           [self = shared_from_this()](const boost::system::error_code& ec, tcp::resolver::results_type r) {
                             if (ec) return self->try_failed();
                             self->connect(r);
                           });
  }

  void connect(const tcp::resolver::results_type& endpoints) {
    if (stopped) return;
    asio::async_connect(socket, endpoints, [self = shared_from_this()](const boost::system::error_code& ec, const tcp::endpoint&) {
      if (ec) return self->try_failed();
      if (!self->target.http) return self->succeeded();
      self->send_request();
    });
  }

  void send_request() {
    const std::string host = target.host.find(':') != std::string::npos ? "[" + target.host + "]" : target.host;
    request = "GET " + target.path + " HTTP/1.1\r\nHost: " + host + ":" + target.port +
              "\r\nUser-Agent: tensorinit-ready\r\nConnection: close\r\n\r\n";
    asio::async_write(socket, asio::buffer(request), [self = shared_from_this()](const boost::system::error_code& ec, size_t) {
      if (ec) return self->try_failed();
      asio::async_read_until(self->socket, self->response, "\n",
                             [self](const boost::system::error_code& read_ec, size_t) {
                               if (read_ec) return self->try_failed();
                               std::istream in(&self->response);
                               std::string line;
                               std::getline(in, line);
                               const int code = http_status(line);
                               if (code >= 200 && code < 300) return self->succeeded();
                               self->try_failed();
                             });
    });
  }

  void end_try() {
    deadline.cancel();
    boost::system::error_code ignored;
    socket.close(ignored);
    response.consume(response.size());
  }

  void succeeded() {
    end_try();
    if (stopped) return;
    stopped = true;
    on_ready();
  }

  void try_failed() {
    end_try();
    if (stopped) return;
    pause.expires_after(interval);
    interval = std::min<std::chrono::milliseconds>(interval * 2, kMaxInterval);
    pause.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (!ec) self->start_try();
    });
  }
};

ReadyProbe::ReadyProbe(asio::io_context& io, ProbeTarget target, std::function<void()> on_ready)
    : state_(std::make_shared<State>(io, std::move(target), std::move(on_ready))) {
  state_->start_try();
}

ReadyProbe::~ReadyProbe() {
  state_->stopped = true;
  boost::system::error_code ignored;
  state_->resolver.cancel();
  state_->deadline.cancel();
  state_->pause.cancel();
  state_->socket.close(ignored);
}

unsigned ReadyProbe::tries() const { return state_->tries; }

}  // namespace tensorinit::init
