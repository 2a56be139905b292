// tensorinit: container-start init that stages model weights, then hands off to the server.
#include "app/cli.hpp"
#include "init/signals.hpp"

namespace {

tensorinit::init::InheritedSignals inherited;

// First thing: a SIGTERM that arrives while we start must wait for the init loop, not kill us
// (as PID 1 the kernel would even discard it while its disposition is the default). .preinit_array
// runs before every static constructor, ours and the shared libraries' alike, right after the
// dynamic loader's relocations: the earliest user code of the process.
void block_first(int, char**, char**) { inherited = tensorinit::init::block_all_signals(); }
[[gnu::section(".preinit_array"), gnu::used]] void (*block_first_entry)(int, char**, char**) = block_first;

}  // namespace

int main(int argc, char** argv) { return tensorinit::app::main(argc, argv, inherited); }
