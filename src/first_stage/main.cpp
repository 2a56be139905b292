// bin/tensorinit, the first stage: static, so nothing runs between execve and its entry point,
// which blocks every signal (first_stage/entry.cpp). Then it execs the full program
// (tensorinit-full, beside it), which the mask and any pending SIGTERM survive.
// docs/notes/init15.md.
#include <signal.h>

#include "first_stage/entry.hpp"
#include "first_stage/full_program.hpp"
#include "init/mask_handover.hpp"
#include "util/log.hpp"

int main(int, char** argv, char** envp) {
  using namespace tensorinit;
  std::uint64_t mask = tensorinit_entry_mask;
  if (tensorinit_entry_ran == 0) {  // linked without the entry point: block now (a later window)
    sigset_t all, old;
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, &old);
    mask = init::bits_from_mask(old);
  }
  // Started with everything blocked and a handover entry: this binary was exec'd by a first
  // stage, i.e. tensorinit-full is this file again. Stop rather than exec it forever.
  constexpr std::uint64_t unblockable = std::uint64_t{1} << (SIGKILL - 1) | std::uint64_t{1} << (SIGSTOP - 1);
  for (char** e = envp; e != nullptr && *e != nullptr; ++e) {
    if (init::is_mask_entry(*e) && (mask | unblockable) == ~std::uint64_t{0}) {
      log::error("tensorinit-full is the first stage itself, not the full program: reinstall tensorinit");
      return static_cast<int>(Code::internal);
    }
  }
  auto path = first_stage::full_program_path();
  if (!path) {
    log::error(path.error().message);
    return path.error().exit_code();
  }
  const Error error = first_stage::exec_full_program(*path, argv, envp, mask);
  log::error(error.message);
  return error.exit_code();
}
