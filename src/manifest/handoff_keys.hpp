// The handoff keys of a supervising tensorinit: handoff.ready (how the server is known ready) and
// handoff.restart, max_restarts, restart_delay (restart without reload), for parse.cpp. Throws
// Failure (via Fields) on a bad key or value. Not thread-safe (one Fields per parse).
#pragma once

#include "manifest/fields.hpp"
#include "manifest/manifest.hpp"

namespace tensorinit::manifest {

// The handoff map's keys this file reads; null when absent.
struct SupervisionKeys {
  const Field* mode = nullptr;
  const Field* ready = nullptr;
  const Field* restart = nullptr;
  const Field* max_restarts = nullptr;
  const Field* restart_delay = nullptr;
};

// Fills the ready and restart members of `handoff` (its mode already parsed). Both need a
// tensorinit that stays the server's parent: with mode exec (tensorinit is replaced by the
// server, or, as PID 1, gives up the weights' ownership rules of signal mode) or none (no server)
// they are errors naming `handoff.mode: signal` (with `start: after-load` it behaves like exec).
void parse_supervision_keys(const Fields& f, const Field& handoff_map, Handoff& handoff, const SupervisionKeys& keys);

}  // namespace tensorinit::manifest
