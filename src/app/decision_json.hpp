// The decision as JSON, one shape for `plan --json` and the report: each candidate's type,
// path or url, usable, reason or bytes, measured rate; the chosen source; why.
#pragma once

#include <nlohmann/json.hpp>

#include "plan/decision.hpp"

namespace tensorinit::app {

nlohmann::json source_json(const manifest::Source& source);
nlohmann::json decision_json(const plan::Decision& decision);

}  // namespace tensorinit::app
