// tensorinit: container-start init that stages model weights, then hands off to the server.
#include "app/cli.hpp"
#include "init/supervisor.hpp"

int main(int argc, char** argv) {
  // First thing: a SIGTERM that arrives while we parse must wait for the init loop, not kill us.
  const auto inherited = tensorinit::init::block_all_signals();
  return tensorinit::app::main(argc, argv, inherited);
}
