// The init loop's state, shared by supervisor.cpp (signals, reaping, staging, shutdown) and
// supervisor_restart.cpp (readiness and restarts). Internal to init/: use supervisor.hpp.
// Every catchable signal stays blocked; none is ever delivered to a handler. Two ways to wait,
// one set of rules (on_signal and everything after it): the plain init (no staging, socket,
// ready watch or restarts) waits in sigtimedwait alone, its only timer (the grace, then SIGKILL
// every 100 ms) the call's timeout, as tini does; that skips asio's epoll, eventfd and timerfd
// set-up (43 -> 25 system calls for `run -- /bin/true`; docs/notes/init20.md). Everything else
// runs one Asio io_context on the main thread (AsioLoop), fed by a signalfd, timers, the
// readiness socket and the ready probe. The staging worker reports back by posting to the same
// loop, so all state below is touched by one thread only.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <stop_token>
#include <thread>

#include "handoff/socket.hpp"
#include "init/ready_probe.hpp"
#include "init/readiness.hpp"
#include "init/supervisor.hpp"

namespace tensorinit::init::detail {

namespace asio = boost::asio;

class Supervisor {
 public:
  Supervisor(const Options& options, const InheritedSignals& inherited)
      : options_(options), inherited_(inherited), handoff_(options.handoff) {}

  int run();

 private:
  bool open_signalfd();
  void read_signals();     // every signal pending now
  void wait_for_signals(); // asio: the signalfd's next readiness
  void wait_plain();       // no asio: sigtimedwait until finished_
  void set_kill_at(std::optional<std::chrono::steady_clock::time_point> at);
  void on_signal(int sig);
  void on_stop_signal(int sig);
  void reap();
  void on_child_change(pid_t pid, int status);
  void forward(int sig);
  bool start_server();
  void start_stage();
  void on_stage_done(Status result);
  void send_ready_signal();  // from the first look; poll_ready_signal looks again until it is sent
  void poll_ready_signal(ReadinessScan scan);
  void drain_others();
  void arm_deadline();
  void on_deadline();
  void maybe_finish();
  int exit_code() const;
  // supervisor_restart.cpp
  void on_server_started();
  void on_server_exited();
  void watch_ready();
  void on_ready_answer();
  void on_ready_message(pid_t peer);
  void maybe_ready();
  void on_ready_timeout();
  bool restart_due() const;
  void schedule_restart();
  void try_restart();
  void cancel_restart(int stop_sig);

  const Options& options_;
  const InheritedSignals& inherited_;
  const SignalHandoff* handoff_;
  // Only when staging, the socket, a ready watch or restarts need it: its construction is the
  // epoll, eventfd and timerfd set-up the plain init goes without.
  struct AsioLoop {
    asio::io_context io;
    asio::posix::stream_descriptor signals{io};  // the signalfd
    asio::steady_timer kill_timer{io};           // at kill_at_
    asio::steady_timer ready_poll{io};
    asio::steady_timer ready_deadline{io};
    asio::steady_timer restart_timer{io};
  };
  std::unique_ptr<AsioLoop> asio_;
  // When the grace ends (SIGKILL for everything left), then every 100 ms while anything is left.
  std::optional<std::chrono::steady_clock::time_point> kill_at_;
  unsigned ready_polls_ = 0;  // looks that found the server not ready since send_ready_signal
  std::unique_ptr<handoff::ReadySocket> socket_;

  pid_t main_pid_ = -1;
  bool main_alive_ = false;
  bool children_left_ = false;
  bool owns_terminal_ = false;
  std::optional<int> main_code_;
  std::optional<int> stop_signal_;  // SIGTERM (or SIGINT before a child existed) received
  std::optional<int> forced_code_;  // the staging error's code, or 126/127 of a late spawn
  bool deadline_armed_ = false;
  bool killing_ = false;
  bool started_ = false;   // past the start-up signals: until then nothing can finish the loop
  bool finished_ = false;

  enum class Stage { none, running, done } stage_ = Stage::none;
  bool staged_ok_ = false;  // staging succeeded (or there is none): the weights are ready

  // Readiness and restarts (supervisor_restart.cpp).
  std::unique_ptr<ReadyProbe> probe_;
  bool answered_ready_ = false;   // this server answered the probe or said ready on the socket
  bool ready_ = false;            // ... and the weights are staged: reported
  unsigned restarts_ = 0;
  std::chrono::milliseconds next_delay_{0};
  bool restart_pending_ = false;  // the server exited; a restart is due
  bool delay_passed_ = false;
  bool no_restart_ = false;       // SIGINT: the operator wants it to end
  std::stop_source stop_;
  std::thread worker_;
};

}  // namespace tensorinit::init::detail
