// bin/tensorinit, the first stage: static, so nothing runs between execve and its entry point,
// which blocks every signal (first_stage/entry.cpp). The plain init (`run -- COMMAND` with no
// manifest) it runs itself, with the same code as tensorinit-full (init/run_flags.hpp); for
// everything else it execs tensorinit-full beside it, which the mask and any pending SIGTERM
// survive. docs/notes/init15.md.
#include <signal.h>
#include <unistd.h>

#include <optional>
#include <string_view>

#include "first_stage/entry.hpp"
#include "first_stage/full_program.hpp"
#include "init/mask_handover.hpp"
#include "init/run_flags.hpp"
#include "util/exit_code.hpp"
#include "util/log.hpp"

namespace {

using namespace tensorinit;

// `run` without a manifest and without --help: the plain init, here. Everything else, a usage
// error included, is tensorinit-full's to answer (it parses the same words with the same code).
std::optional<int> plain_init_here(int argc, char** argv, std::uint64_t mask) {
  if (argc < 2 || std::string_view(argv[1]) != "run") return std::nullopt;
  Args args("run", std::vector<std::string>(argv + 2, argv + argc));
  if (args.flag("--help") || args.flag("-h")) return std::nullopt;
  auto flags = init::parse_run_flags(args);
  if (!flags || flags->manifest) return std::nullopt;
  // Blocked since main (or the entry point); `mask` is what was blocked before.
  const init::InheritedSignals inherited = init::blocked_already(init::mask_from_bits(mask), init::Dispositions::init_only);
  return exit_code_of([&] { return init::run_plain_init(*flags, inherited); });
}

}  // namespace

int main(int argc, char** argv, char** envp) {
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
  // The plain init ends without exit()'s static destructors and handlers (libstdc++'s, asio's:
  // nothing to flush, log lines are write(2)s): their code pages were 3 of its page faults.
  if (auto code = plain_init_here(argc, argv, mask)) ::_exit(*code);
  auto path = first_stage::full_program_path();
  if (!path) {
    log::error(path.error().message);
    return path.error().exit_code();
  }
  const Error error = first_stage::exec_full_program(*path, argv, envp, mask);
  log::error(error.message);
  return error.exit_code();
}
