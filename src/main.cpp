// tensorinit: container-start init that stages model weights, then hands off to the server.
#include <sys/prctl.h>

#include <cstring>

#include "app/cli.hpp"
#include "init/mask_handover.hpp"
#include "init/signals.hpp"

namespace {

tensorinit::init::InheritedSignals inherited;

// First thing: a SIGTERM that arrives while we start must wait for the init loop, not kill us
// (as PID 1 the kernel would even discard it while its disposition is the default). .preinit_array
// runs before every static constructor, ours and the shared libraries' alike, right after the
// dynamic loader's relocations: the earliest user code of the process. Started by bin/tensorinit
// (src/first_stage), every signal is blocked already since execve, and the mask the first stage
// was started with comes in the environment (taken out here, before anyone reads it); the
// process name (comm, what ps -o comm, top and the tests see) goes back to the one the first
// stage had, not "tensorinit-full".
void block_first(int argc, char** argv, char** envp) {
  inherited = tensorinit::init::block_all_signals();
  if (tensorinit::init::adopt_handed_over_mask(inherited.mask, envp) && argc > 0 && argv[0] != nullptr) {
    const char* slash = std::strrchr(argv[0], '/');
    ::prctl(PR_SET_NAME, slash != nullptr ? slash + 1 : argv[0]);
  }
}
[[gnu::section(".preinit_array"), gnu::used]] void (*block_first_entry)(int, char**, char**) = block_first;

}  // namespace

int main(int argc, char** argv) { return tensorinit::app::main(argc, argv, inherited); }
