#include "init/exec.hpp"

#include <errno.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include "util/log.hpp"

extern char** environ;

namespace tensorinit::init {

ExecImage::ExecImage(std::vector<std::string> argv, const EnvOverrides& overrides) : args_(std::move(argv)) {
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view entry(*e);
    bool replaced = false;
    for (const auto& [key, value] : overrides) {
      if (entry.size() > key.size() && entry.starts_with(key) && entry[key.size()] == '=') {
        replaced = true;
        break;
      }
    }
    if (!replaced) env_.emplace_back(entry);
  }
  for (const auto& [key, value] : overrides) env_.push_back(key + "=" + value);
  for (auto& a : args_) argv_pointers_.push_back(a.data());
  argv_pointers_.push_back(nullptr);
  for (auto& entry : env_) env_pointers_.push_back(entry.data());
  env_pointers_.push_back(nullptr);
}

int exit_code_of(int wait_status) {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  return static_cast<int>(Code::internal);
}

Error exec_error(const std::string& command, int err) {
  if (err == ENOENT) return Error{Code::not_found, command + ": command not found"};
  return Error{Code::not_executable, command + ": cannot execute: " + strerror(err)};
}

Error exec_in_place(const ExecRequest& request, const InheritedSignals& inherited) {
  if (request.argv.empty()) return Error{Code::usage, "no command to run (give one after --)"};
  ExecImage image(request.argv, request.env);
  const PendingSignals pending = take_pending_signals(inherited);
  if (pending.stop != 0)
    return Error{static_cast<Code>(128 + pending.stop),
                 fmt::format("stopped by signal {} ({}) before the server started", pending.stop, strsignal(pending.stop))};
  for (int sig : pending.discarded) warn_dropped(sig);
  prepare_exec(inherited, request.keep_fds);
  ::execvpe(image.argv()[0], image.argv(), image.envp());
  const int err = errno;
  sigset_t all;
  sigfillset(&all);
  sigprocmask(SIG_SETMASK, &all, nullptr);
  return exec_error(request.argv[0], err);
}

}  // namespace tensorinit::init
