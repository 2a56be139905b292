// The init loop's readiness watch (handoff.ready) and restarts (handoff.restart). The staged
// weights belong to the caller and are not touched here: a restart spawns the same command on
// them, after check_before_restart.
#include <fmt/format.h>
#include <signal.h>

#include <cstring>
#include <string>

#include "init/supervisor_loop.hpp"
#include "util/log.hpp"
#include "util/proc_stat.hpp"

namespace tensorinit::init::detail {
namespace {

// Whether `pid` is `ancestor` or one of its descendants (/proc/PID/stat's ppid chain, walked in
// the numbers of the /proc there is: another namespace's when it was not mounted for ours).
bool descends_from(pid_t pid, pid_t ancestor) {
  if (pid == ancestor) return true;
  const auto pid_there = proc_pid(pid), ancestor_there = proc_pid(ancestor);
  if (!pid_there || !ancestor_there) return false;
  pid = *pid_there;
  ancestor = *ancestor_there;
  for (int depth = 0; depth < 64 && pid > 1; ++depth) {
    if (pid == ancestor) return true;
    const auto stat = read_proc_stat(pid);
    if (!stat) return false;
    pid = stat->ppid;
  }
  return false;
}

std::string ms_text(std::chrono::milliseconds d) {
  return d.count() % 1000 == 0 ? fmt::format("{}s", d.count() / 1000) : fmt::format("{}ms", d.count());
}

}  // namespace

void Supervisor::on_server_started() {
  answered_ready_ = false;
  ready_ = false;
  if (options_.events.spawned) options_.events.spawned(main_pid_, restarts_);
  // A restarted server in early-start signal mode waits for the signal like the first did.
  if (restarts_ > 0 && staged_ok_ && handoff_ != nullptr && handoff_->start_early) send_ready_signal();
  watch_ready();
}

void Supervisor::watch_ready() {
  if (options_.ready.by == ReadyWatch::By::none) return;
  asio_->ready_deadline.expires_after(options_.ready.timeout);
  asio_->ready_deadline.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) on_ready_timeout();
  });
  if (options_.ready.by == ReadyWatch::By::probe)
    probe_ = std::make_unique<ReadyProbe>(asio_->io, options_.ready.probe, [this] { on_ready_answer(); });
}

void Supervisor::on_ready_answer() {
  answered_ready_ = true;
  maybe_ready();
}

// A `ready` line on the socket counts only from the server or one of its descendants: any other
// process that can reach the socket (another container sharing /dev/shm gets pid 0) is ignored.
void Supervisor::on_ready_message(pid_t peer) {
  if (!main_alive_ || ready_) return;
  if (peer <= 0 || !descends_from(peer, main_pid_)) {
    log::warn(fmt::format("a 'ready' on the socket from pid {}, not the server (pid {}) or its descendant: ignored",
                          peer, main_pid_));
    return;
  }
  answered_ready_ = true;
  maybe_ready();
}

void Supervisor::maybe_ready() {
  if (ready_ || !answered_ready_ || !staged_ok_ || !main_alive_ || stop_signal_ || forced_code_) return;
  ready_ = true;
  asio_->ready_deadline.cancel();  // answered_ready_: a probe or the socket, both asio's
  probe_.reset();
  if (options_.events.ready) options_.events.ready();
}

void Supervisor::on_ready_timeout() {
  if (ready_ || !main_alive_ || stop_signal_ || forced_code_) return;
  const Error error{Code::unavailable, fmt::format("the server (pid {}) was not ready within {} of its start "
                                                   "(handoff.ready.timeout): stopping it",
                                                   main_pid_, ms_text(options_.ready.timeout))};
  log::error(error.message);
  forced_code_ = error.exit_code();
  no_restart_ = true;
  if (options_.events.failed) options_.events.failed(error);
  probe_.reset();
  if (stage_ == Stage::running) stop_.request_stop();
  if (socket_) socket_->fail(*forced_code_, error.message);
  forward(SIGTERM);
  arm_deadline();
}

void Supervisor::on_server_exited() {
  probe_.reset();
  if (asio_) asio_->ready_deadline.cancel();
  ready_ = false;
  const bool restarting = restart_due();
  if (options_.events.exited) options_.events.exited(*main_code_, restarting);
  if (restarting) {
    schedule_restart();
    return;
  }
  if (stage_ == Stage::running) stop_.request_stop();
  if (socket_) socket_->fail(*main_code_, "the server exited");
}

bool Supervisor::restart_due() const {
  const RestartPolicy& policy = options_.restart;
  if (policy.when == RestartPolicy::When::never || stop_signal_ || no_restart_ || forced_code_) return false;
  if (policy.when == RestartPolicy::When::on_failure && *main_code_ == 0) return false;
  if (restarts_ < policy.max_restarts) return true;
  log::info(fmt::format("the server exited with code {}; no restart left (handoff.max_restarts {})", *main_code_,
                        policy.max_restarts));
  return false;
}

void Supervisor::schedule_restart() {
  restart_pending_ = true;
  delay_passed_ = false;
  const auto delay = next_delay_;
  next_delay_ = std::min(next_delay_ * 2, std::max(options_.restart.max_delay, options_.restart.first_delay));
  log::info(fmt::format("the server (pid {}) exited with code {}: restart {} of {} in {}, on the staged weights",
                        main_pid_, *main_code_, restarts_ + 1, options_.restart.max_restarts, ms_text(delay)));
  asio_->restart_timer.expires_after(delay);
  asio_->restart_timer.async_wait([this](const boost::system::error_code& ec) {
    if (ec || !restart_pending_) return;
    delay_passed_ = true;
    try_restart();
    maybe_finish();
  });
}

// Once the delay passed and the old server's leftovers are gone (drained with the grace, then
// SIGKILL), so the new server finds its port and its GPU free.
void Supervisor::try_restart() {
  if (!restart_pending_ || !delay_passed_ || children_left_) return;
  restart_pending_ = false;
  set_kill_at(std::nullopt);
  deadline_armed_ = false;
  killing_ = false;
  if (options_.events.check_before_restart) {
    if (auto ok = options_.events.check_before_restart(); !ok) {
      log::error(ok.error().message);
      forced_code_ = ok.error().exit_code();
      if (options_.events.failed) options_.events.failed(ok.error());
      return;
    }
  }
  ++restarts_;
  start_server();
}

void Supervisor::cancel_restart(int stop_sig) {
  restart_pending_ = false;
  asio_->restart_timer.cancel();
  if (!forced_code_) forced_code_ = 128 + stop_sig;
  const char* name = ::sigabbrev_np(stop_sig);
  log::info(fmt::format("SIG{} during the restart delay: no restart", name ? name : "?"));
}

}  // namespace tensorinit::init::detail
