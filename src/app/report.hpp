// The report (contract) of `tensorinit load` and `run`: the weights, the phases and timeline,
// and with a server its part (time to ready, restarts). Written by write_report alone, which
// LoadSession alone calls, on every path.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "app/load_weights.hpp"
#include "util/output_file.hpp"

namespace tensorinit::app {

struct ServerFacts {
  std::optional<double> ready;      // seconds from the process start to the server's first ready
  std::optional<double> server;     // ... of which the server alone: from the later of its spawn and
                                    // its weights being staged to its ready answer
  unsigned restarts = 0;
  double restart_check_seconds = 0;  // the arena checks before restarts, summed
};

// The report (contract), written atomically to `path` (skipped when empty), with `timeline`,
// `seconds.startup` and, when known, `seconds.ready`, `seconds.server` and `restarts`; `caches`
// (app/startup_caches.hpp report()), when not null, as the report's "caches". A report that
// cannot be written is a warning, never a reason to fail a good load.
void write_report(const OutputFile& file, const manifest::Manifest& manifest, const LoadedWeights* loaded,
                  const std::optional<plan::Decision>& decision, const Error* error, const Phases& phases,
                  const ServerFacts& server, const nlohmann::json& caches);

}  // namespace tensorinit::app
