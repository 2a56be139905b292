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
// Then: not dumpable. This process holds what the manifest gives it (an S3 secret key or session
// token, model.key, a passphrase, URL userinfo), also when written in the manifest itself and not
// passed in the environment (which the server gets anyway): a crash must not write it into a core
// file, and a server running under the same non-root uid must not read it from /proc/PID/mem
// (it did, with the secret written in the manifest: tests/integration/test_attack8_dumpable.sh).
// The server, exec'd, is dumpable again; this process still reads its own /proc/self.
void block_first(int argc, char** argv, char** envp) {
  inherited = tensorinit::init::block_all_signals();
  ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  if (tensorinit::init::adopt_handed_over_mask(inherited.mask, envp) && argc > 0 && argv[0] != nullptr) {
    const char* slash = std::strrchr(argv[0], '/');
    ::prctl(PR_SET_NAME, slash != nullptr ? slash + 1 : argv[0]);
  }
}
[[gnu::section(".preinit_array"), gnu::used]] void (*block_first_entry)(int, char**, char**) = block_first;

}  // namespace

int main(int argc, char** argv) { return tensorinit::app::main(argc, argv, inherited); }
