// The command line: parses the verb and its options, runs it, maps every failure to one
// `tensorinit: error: ...` line and the contract's exit code.
#pragma once

#include "init/signals.hpp"

namespace tensorinit::app {

int main(int argc, char** argv, const init::InheritedSignals& inherited);

}  // namespace tensorinit::app
