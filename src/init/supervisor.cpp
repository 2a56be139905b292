// The init loop: one Asio io_context on the main thread, fed by a signalfd (every catchable
// signal stays blocked; none is ever delivered to a handler), two timers and the readiness
// socket. The staging worker reports back by posting to the same loop, so all state below is
// touched by one thread only.
#include "init/supervisor.hpp"

#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <thread>

#include "handoff/socket.hpp"
#include "init/readiness.hpp"
#include "init/reaper.hpp"
#include "init/signals.hpp"
#include "init/spawn.hpp"
#include "util/log.hpp"

namespace tensorinit::init {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

Result<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail(Code::io, "cannot read the tensor table " + path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

class Supervisor {
 public:
  Supervisor(const Options& options, const InheritedSignals& inherited)
      : options_(options), inherited_(inherited), handoff_(options.handoff) {}

  int run();

 private:
  bool open_signalfd();
  void read_signals();
  void wait_for_signals();
  void on_signal(int sig);
  void on_stop_signal(int sig);
  void reap();
  void on_child_change(pid_t pid, int status);
  void forward(int sig);
  bool start_server();
  void start_stage();
  void on_stage_done(Status result);
  void send_ready_signal();
  void drain_others();
  void arm_deadline();
  void on_deadline();
  void maybe_finish();
  int exit_code() const;

  const Options& options_;
  const InheritedSignals& inherited_;
  const SignalHandoff* handoff_;
  asio::io_context io_;
  std::optional<asio::posix::stream_descriptor> signals_;
  asio::steady_timer deadline_{io_};
  asio::steady_timer kill_again_{io_};
  asio::steady_timer ready_poll_{io_};
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
  std::stop_source stop_;
  std::thread worker_;
};

int Supervisor::run() {
  if (!become_subreaper()) log::warn("cannot become a child subreaper; orphans will not be reaped");
  take_ignored_signals_back(inherited_);
  if (!open_signalfd()) return static_cast<int>(Code::internal);
  // What arrived while the command line and manifest were read (no server yet): a stop signal
  // ends here, the others are dropped (sent to the server the instant it starts, before it has
  // a handler, USR1 or PIPE would kill it).
  read_signals();
  if (stop_signal_) return 128 + *stop_signal_;
  started_ = true;

  if (handoff_ != nullptr && !handoff_->socket_path.empty()) {
    auto socket = handoff::ReadySocket::listen(io_, handoff_->socket_path);
    if (!socket) {
      log::error(socket.error().message);
      return socket.error().exit_code();
    }
    socket_ = std::move(*socket);
  }
  if (handoff_ == nullptr || handoff_->start_early) {
    if (!start_server()) return *forced_code_;
  }
  if (handoff_ != nullptr) start_stage();

  wait_for_signals();
  maybe_finish();
  if (!finished_) io_.run();
  if (worker_.joinable()) worker_.join();
  return exit_code();
}

int Supervisor::exit_code() const {
  if (forced_code_) return *forced_code_;
  if (main_code_) return *main_code_;
  if (stop_signal_) return 128 + *stop_signal_;
  return static_cast<int>(Code::internal);
}

bool Supervisor::open_signalfd() {
  sigset_t all;
  sigfillset(&all);
  int fd = ::signalfd(-1, &all, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd < 0) {
    log::error(std::string("signalfd: ") + strerror(errno));
    return false;
  }
  signals_.emplace(io_, fd);
  return true;
}

void Supervisor::read_signals() {
  signalfd_siginfo infos[16];
  for (;;) {
    ssize_t n = ::read(signals_->native_handle(), infos, sizeof infos);
    if (n <= 0) break;
    for (size_t i = 0; i < static_cast<size_t>(n) / sizeof infos[0]; ++i)
      on_signal(static_cast<int>(infos[i].ssi_signo));
  }
}

void Supervisor::wait_for_signals() {
  signals_->async_wait(asio::posix::descriptor_base::wait_read, [this](const boost::system::error_code& ec) {
    if (ec) return;
    read_signals();
    if (!finished_) wait_for_signals();
  });
}

void Supervisor::on_signal(int sig) {
  if (sig == SIGCHLD) {
    reap();
    return;
  }
  if (main_pid_ < 0) {  // no server yet (after-load staging, or before the spawn)
    if (sigismember(&inherited_.ignored, sig) == 1 || default_is_ignore(sig)) return;
    if (is_stop_signal(sig)) {
      on_stop_signal(sig);
    } else {
      warn_dropped(sig);
    }
    return;
  }
  if (sig == SIGTERM) {
    on_stop_signal(sig);
    return;
  }
  if (sig == SIGCONT && owns_terminal_ && main_alive_) {
    // Resumed by the shell (`fg`) after the server stopped: the terminal goes back to the
    // server's group, and the whole group continues (Ctrl-Z stopped all of it).
    ::tcsetpgrp(STDIN_FILENO, main_pid_);
    ::kill(-main_pid_, SIGCONT);
    return;
  }
  if (main_alive_) forward(sig);
}

// SIGTERM: forward it and give the server the grace; stop staging. TERM, INT, HUP or QUIT
// before any child (after-load staging) stops the same way.
void Supervisor::on_stop_signal(int sig) {
  if (main_alive_) forward(sig);
  if (stop_signal_) return;
  stop_signal_ = sig;
  if (stage_ == Stage::running) stop_.request_stop();
  if (socket_) socket_->fail(128 + sig, "tensorinit is stopping");
  if (main_alive_) arm_deadline();
  maybe_finish();
}

void Supervisor::forward(int sig) {
  // main_alive_ means not reaped yet: the pid (and the group it leads) cannot be recycled.
  ::kill(options_.group ? -main_pid_ : main_pid_, sig);
}

void Supervisor::reap() {
  const bool main_was_alive = main_alive_;
  children_left_ = reap_exited([this](pid_t pid, int status) { on_child_change(pid, status); });
  // Only when something is left: with no children there are no descendants either (every one
  // has a chain of parents ending in a child of ours), and the /proc walk is skipped.
  if (main_was_alive && !main_alive_ && children_left_) drain_others();
  maybe_finish();
}

void Supervisor::on_child_change(pid_t pid, int status) {
  if (pid != main_pid_ || !main_alive_) return;  // an orphan reaped: nothing else to do
  if (WIFSTOPPED(status)) {
    // The server stopped (Ctrl-Z): stop too, so the shell sees the job stopped and takes the
    // terminal back. Only when run from a terminal and not as PID 1: a container init never stops.
    if (owns_terminal_ && ::getpid() != 1) ::kill(::getpid(), SIGSTOP);
    return;
  }
  main_alive_ = false;
  main_code_ = exit_code_of(status);
  if (stage_ == Stage::running) stop_.request_stop();
  if (socket_) socket_->fail(*main_code_, "the server exited");
}

void Supervisor::drain_others() {
  if (signal_descendants(SIGTERM) > 0) arm_deadline();
}

void Supervisor::arm_deadline() {
  if (deadline_armed_) return;
  deadline_armed_ = true;
  deadline_.expires_after(options_.grace);
  deadline_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) on_deadline();
  });
}

void Supervisor::on_deadline() {
  killing_ = true;
  if (main_alive_) ::kill(-main_pid_, SIGKILL), ::kill(main_pid_, SIGKILL);
  signal_descendants(SIGKILL);
  // Whatever forked meanwhile gets the same, until nothing is left.
  kill_again_.expires_after(100ms);
  kill_again_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec && !finished_) on_deadline();
  });
}

bool Supervisor::start_server() {
  SpawnRequest request;
  request.argv = options_.command;
  request.env = options_.env;
  if (socket_) request.env.emplace_back("TENSORINIT_SOCKET", socket_->path());
  owns_terminal_ = owns_terminal();
  request.take_terminal = owns_terminal_;
  auto pid = spawn(request, inherited_);
  if (!pid) {
    log::error(pid.error().message);
    forced_code_ = pid.error().exit_code();
    if (socket_) socket_->fail(*forced_code_, pid.error().message);
    return false;
  }
  main_pid_ = *pid;
  main_alive_ = true;
  children_left_ = true;
  return true;
}

void Supervisor::start_stage() {
  stage_ = Stage::running;
  worker_ = std::thread([this, token = stop_.get_token()] {
    Status result;
    try {
      result = handoff_->stage(token);
    } catch (const Failure& failure) {
      result = std::unexpected(failure.error);
    } catch (const std::exception& e) {
      result = fail(Code::internal, e.what());
    }
    asio::post(io_, [this, result = std::move(result)] { on_stage_done(result); });
  });
}

void Supervisor::on_stage_done(Status result) {
  worker_.join();
  stage_ = Stage::done;
  if (stop_.stop_requested()) {  // stopped by us (SIGTERM, or the server exited): result moot
    maybe_finish();
    return;
  }
  if (result && socket_) {
    auto table = read_file(handoff_->table_path);
    if (table) {
      socket_->ready(std::move(*table));
    } else {
      result = std::unexpected(table.error());
    }
  }
  if (!result) {
    log::error(result.error().message);
    forced_code_ = result.error().exit_code();
    if (socket_) socket_->fail(*forced_code_, result.error().message);
    if (main_alive_) {
      forward(SIGTERM);
      arm_deadline();
    }
    maybe_finish();
    return;
  }
  if (handoff_->start_early) {
    send_ready_signal();
  } else {
    start_server();  // after-load: the weights are ready at exec, no signal needed
  }
  maybe_finish();
}

void Supervisor::send_ready_signal() {
  if (!main_alive_) return;
  const int sig = handoff_->ready_signal;
  if (sig == 0) return;
  const SignalReadiness readiness = default_is_ignore(sig) ? SignalReadiness::ready : signal_readiness(main_pid_, sig);
  if (readiness != SignalReadiness::not_ready) {
    ::kill(main_pid_, sig);
    return;
  }
  ready_poll_.expires_after(10ms);
  ready_poll_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) send_ready_signal();
  });
}

void Supervisor::maybe_finish() {
  if (!started_ || finished_ || stage_ == Stage::running || main_alive_ || children_left_) return;
  finished_ = true;
  io_.stop();
}

}  // namespace

int supervise(const Options& options, const InheritedSignals& inherited) {
  Supervisor supervisor(options, inherited);
  return supervisor.run();
}

}  // namespace tensorinit::init
