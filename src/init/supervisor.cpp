// The init loop (state and threading: supervisor_loop.hpp): signals, reaping, staging, shutdown.
// Readiness and restarts: supervisor_restart.cpp.
#include "init/supervisor.hpp"

#include <signal.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <thread>

#include "handoff/socket.hpp"
#include "init/readiness.hpp"
#include "init/reaper.hpp"
#include "init/signals.hpp"
#include "init/spawn.hpp"
#include "init/supervisor_loop.hpp"
#include "util/exit_code.hpp"
#include "util/log.hpp"

namespace tensorinit::init {
namespace detail {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Whether anything beyond signals, reaping and the grace is asked for (supervisor_loop.hpp).
bool needs_asio(const Options& options) {
  return options.handoff != nullptr || options.ready.by != ReadyWatch::By::none ||
         options.restart.when != RestartPolicy::When::never;
}

// The next signal pending, waiting up to `timeout` (null: for one): 0 when none came in time.
int take_signal(const timespec* timeout) {
  sigset_t all;
  sigfillset(&all);
  const int sig = ::sigtimedwait(&all, nullptr, timeout);
  return sig > 0 ? sig : 0;  // EAGAIN (timed out), EINTR (a ptrace stop): the caller looks again
}

}  // namespace

int Supervisor::run() {
  if (!become_subreaper()) log::warn("cannot become a child subreaper; orphans will not be reaped");
  take_ignored_signals_back(inherited_);
  if (needs_asio(options_)) {
    asio_ = std::make_unique<AsioLoop>();
    if (!open_signalfd()) return static_cast<int>(Code::internal);
  }
  // What arrived while the command line and manifest were read (no server yet): a stop signal
  // ends here, the others are dropped (sent to the server the instant it starts, before it has
  // a handler, USR1 or PIPE would kill it).
  read_signals();
  if (stop_signal_) return 128 + *stop_signal_;
  started_ = true;

  if (handoff_ != nullptr && !handoff_->socket_path.empty()) {
    auto socket = handoff::ReadySocket::listen(asio_->io, handoff_->socket_path);
    if (!socket) {
      log::error(socket.error().message);
      return socket.error().exit_code();
    }
    socket_ = std::move(*socket);
    if (options_.ready.by == ReadyWatch::By::socket)
      socket_->on_ready_message([this](pid_t peer) { on_ready_message(peer); });
  }
  staged_ok_ = handoff_ == nullptr;
  next_delay_ = options_.restart.first_delay;
  if (handoff_ == nullptr || handoff_->start_early) {
    if (!start_server()) return *forced_code_;
  }
  if (handoff_ != nullptr) start_stage();

  if (asio_) {
    wait_for_signals();
    maybe_finish();
    if (!finished_) asio_->io.run();
  } else {
    wait_plain();
  }
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
  asio_->signals.assign(fd);
  return true;
}

void Supervisor::read_signals() {
  if (!asio_) {
    static constexpr timespec now{};
    while (const int sig = take_signal(&now)) on_signal(sig);
    return;
  }
  signalfd_siginfo infos[16];
  for (;;) {
    ssize_t n = ::read(asio_->signals.native_handle(), infos, sizeof infos);
    if (n <= 0) break;
    for (size_t i = 0; i < static_cast<size_t>(n) / sizeof infos[0]; ++i)
      on_signal(static_cast<int>(infos[i].ssi_signo));
  }
}

void Supervisor::wait_for_signals() {
  asio_->signals.async_wait(asio::posix::descriptor_base::wait_read, [this](const boost::system::error_code& ec) {
    if (ec) return;
    read_signals();
    if (!finished_) wait_for_signals();
  });
}

// One signal at a time (a burst costs a call each; SIGCHLDs coalesce), kill_at_ the timeout.
void Supervisor::wait_plain() {
  maybe_finish();
  while (!finished_) {
    timespec left{};
    const timespec* timeout = nullptr;
    if (kill_at_) {
      const auto ns = std::max<std::int64_t>(0, std::chrono::nanoseconds(*kill_at_ - Clock::now()).count());
      left = {static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
      timeout = &left;
    }
    if (const int sig = take_signal(timeout)) on_signal(sig);
    if (!finished_ && kill_at_ && Clock::now() >= *kill_at_) {
      kill_at_.reset();
      on_deadline();
    }
  }
}

void Supervisor::on_signal(int sig) {
  if (sig == SIGCHLD) {
    reap();
    return;
  }
  if (main_pid_ < 0 || restart_pending_) {  // no server yet (after-load staging, before the spawn, a restart delay)
    if (default_is_ignore(sig) || inherited_ignored(inherited_, sig)) return;
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
  if (sig == SIGINT) no_restart_ = true;  // Ctrl-C: the server's exit that follows is no failure to restart
  if (main_alive_) forward(sig);
}

// SIGTERM: forward it and give the server the grace; stop staging. TERM, INT, HUP or QUIT
// before any child (after-load staging) stops the same way.
void Supervisor::on_stop_signal(int sig) {
  if (main_alive_) forward(sig);
  if (stop_signal_) return;
  stop_signal_ = sig;
  probe_.reset();
  if (asio_) asio_->ready_deadline.cancel();
  if (restart_pending_) cancel_restart(sig);
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
  try_restart();  // waits for the old server's leftovers to be gone
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
  on_server_exited();
}

void Supervisor::drain_others() {
  if (signal_descendants(SIGTERM) > 0) arm_deadline();
}

void Supervisor::arm_deadline() {
  if (deadline_armed_) return;
  deadline_armed_ = true;
  set_kill_at(Clock::now() + options_.grace);
}

void Supervisor::set_kill_at(std::optional<Clock::time_point> at) {
  kill_at_ = at;
  if (!asio_) return;  // wait_plain reads kill_at_
  if (!at) {
    asio_->kill_timer.cancel();
    return;
  }
  asio_->kill_timer.expires_at(*at);
  asio_->kill_timer.async_wait([this](const boost::system::error_code& ec) {
    if (ec || finished_ || !kill_at_) return;
    kill_at_.reset();
    on_deadline();
  });
}

void Supervisor::on_deadline() {
  killing_ = true;
  if (main_alive_) ::kill(-main_pid_, SIGKILL), ::kill(main_pid_, SIGKILL);
  signal_descendants(SIGKILL);
  // Whatever forked meanwhile gets the same, until nothing is left.
  set_kill_at(Clock::now() + 100ms);
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
  on_server_started();
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
    } catch (const std::exception& e) {  // bad_alloc, a thread refused: the line the exec path gives
      result = fail(Code::internal, thrown_message(e));
    }
    asio::post(asio_->io, [this, result = std::move(result)] { on_stage_done(result); });
  });
}

void Supervisor::on_stage_done(Status result) {
  worker_.join();
  stage_ = Stage::done;
  if (stop_.stop_requested()) {  // stopped by us (SIGTERM, or the server exited): result moot
    maybe_finish();
    return;
  }
  if (result && socket_) socket_->ready(handoff_->table ? handoff_->table() : std::string());
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
  staged_ok_ = true;
  if (handoff_->start_early) {
    send_ready_signal();
    maybe_ready();  // the server may have answered before its weights were there
  } else if (!restart_pending_) {
    start_server();  // after-load: the weights are ready at exec, no signal needed
  }
  maybe_finish();
}

void Supervisor::send_ready_signal() {
  ready_polls_ = 0;
  poll_ready_signal(ReadinessScan::full);
}

void Supervisor::poll_ready_signal(ReadinessScan scan) {
  if (!main_alive_) return;
  const int sig = handoff_->ready_signal;
  if (sig == 0) return;
  // Whatever the signal's default action: one sent before the server catches (or waits for) it
  // is lost to it (ignored, or SIGCONT's nothing), and a server that asks later waits forever.
  if (signal_readiness(main_pid_, sig, scan) != SignalReadiness::not_ready) {
    ::kill(main_pid_, sig);
    return;
  }
  const ReadyPoll next = next_ready_poll(++ready_polls_);
  asio_->ready_poll.expires_after(next.after);
  asio_->ready_poll.async_wait([this, next](const boost::system::error_code& ec) {
    if (!ec) poll_ready_signal(next.scan);
  });
}

void Supervisor::maybe_finish() {
  if (!started_ || finished_ || stage_ == Stage::running || main_alive_ || children_left_ || restart_pending_) return;
  finished_ = true;
  if (asio_) asio_->io.stop();
}

}  // namespace detail

int supervise(const Options& options, const InheritedSignals& inherited) {
  detail::Supervisor supervisor(options, inherited);
  return supervisor.run();
}

}  // namespace tensorinit::init
