// The report of `tensorinit run` with a server: what load_weights.hpp's write_report writes, and
// the server's part (time to ready, restarts). Called by LoadSession only.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "app/load_weights.hpp"

namespace tensorinit::app {

struct ServerFacts {
  std::optional<double> ready;      // seconds from the process start to the server's first ready
  std::optional<double> server;     // ... of which the server alone: from the later of its spawn and
                                    // its weights being staged to its ready answer
  unsigned restarts = 0;
  double restart_check_seconds = 0;  // the arena checks before restarts, summed
};

// The report (contract), with `timeline`, `seconds.startup` and, when known, `seconds.ready`,
// `seconds.server` and `restarts`; `caches` (when not null) as the report's "caches". Atomic; a report that cannot be written is a warning.
void write_run_report(const std::string& path, const manifest::Manifest& manifest, const LoadedWeights* loaded,
                      const std::optional<plan::Decision>& decision, const Error* error, const Phases& phases,
                      const ServerFacts& server, const nlohmann::json& caches);

}  // namespace tensorinit::app
