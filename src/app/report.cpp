// The report of the contract: where the seconds went, what was decided, what failed.
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "app/decision_json.hpp"
#include "app/load_weights.hpp"
#include "app/report.hpp"
#include "util/atomic_file.hpp"
#include "util/log.hpp"

namespace tensorinit::app {
using nlohmann::json;

json source_json(const manifest::Source& s) {
  json j = {{"type", manifest::to_string(s.type)}};
  if (s.path.empty()) j["url"] = s.url;
  else j["path"] = s.path;
  return j;
}

json decision_json(const plan::Decision& d) {
  json candidates = json::array();
  for (const auto& c : d.candidates) {
    json j = source_json(c.source);
    j["usable"] = c.usable;
    if (!c.usable) j["reason"] = c.reason;
    else j["bytes"] = c.bytes;
    if (c.measured_bps) j["measured_gbps"] = *c.measured_bps / 1e9;
    candidates.push_back(std::move(j));
  }
  json out = {{"candidates", std::move(candidates)}, {"why", d.why}};
  out["chosen"] = d.chosen >= 0 ? source_json(d.chosen_source()) : json(nullptr);
  return out;
}

// The read controller's choices: the setting that carried the load, the candidates, each phase.
json reads_json(const stage::ReadChoices& r) {
  const auto setting = [](const stage::ReadSetting& s) {
    return json{{"mode", stage::to_string(s.mode)}, {"request", s.request}, {"readers", s.in_flight}, {"shared", s.shared},
                {"serialised", s.serialised}};
  };
  json phases = json::array();
  for (const auto& p : r.phases) {
    json j = setting(p.setting);
    j["probe"] = p.probe;
    j["bytes"] = p.bytes;
    j["seconds"] = p.seconds;
    j["gbps"] = p.rate() / 1e9;
    phases.push_back(std::move(j));
  }
  json candidates = json::array();
  for (const auto& c : r.candidates) candidates.push_back(setting(c));
  json out = setting(r.best);
  out["candidates"] = std::move(candidates);
  out["phases"] = std::move(phases);
  if (!r.unmapped.empty()) out["unmapped"] = r.unmapped;
  return out;
}

void write_report(const OutputFile& file, const manifest::Manifest& manifest, const LoadedWeights* loaded,
                  const std::optional<plan::Decision>& decision, const Error* error, const Phases& phases,
                  const ServerFacts& server, const json& caches) {
  if (file.empty()) return;
  json report = {{"version", 1}, {"ok", error == nullptr}, {"model", manifest.model.name}};
  if (loaded) report["decision"] = decision_json(*loaded->decision);
  else if (decision) report["decision"] = decision_json(*decision);
  else report["decision"] = nullptr;
  report["target"] = to_string(loaded ? loaded->staged.target : manifest.stage.target);
  if (loaded) {
    const auto& index = *loaded->decision->index;
    report["files"] = index.files.size();
    report["tensors"] = index.tensors.size();
    report["bytes"] = loaded->staged.bytes;
    report["readers"] = loaded->staged.readers;
    report["chunk_size"] = loaded->staged.chunk_size;
    report["direct_io"] = loaded->staged.direct_io;
    if (!loaded->staged.reads.phases.empty()) report["reads"] = reads_json(loaded->staged.reads);
    if (loaded->staged.compressed_bytes > 0) {  // packed files: what was read, what it decoded to
      report["compressed_bytes"] = loaded->staged.compressed_bytes;
      report["decoded_bytes"] = loaded->staged.decoded_bytes;
    }
  }
  // total: from the process start; startup + the phases add up to it, but for the gaps between
  // them, the phases named in overlapping_phases (they ran beside the others: CUDA start-up) and
  // (signal mode, start early) the server's start, which overlaps the stage.
  json seconds = {{"total", phases.total()}, {"startup", phases.startup()}};
  for (const auto& [name, s] : phases.all()) seconds[name] = s;
  if (auto beside = phases.beside(); !beside.empty()) report["overlapping_phases"] = std::move(beside);
  if (server.ready) seconds["ready"] = *server.ready;
  if (server.server) seconds["server"] = *server.server;
  if (server.restarts > 0) seconds["restart_checks"] = server.restart_check_seconds;
  report["seconds"] = std::move(seconds);
  json timeline = json::array();
  for (const auto& [event, at] : phases.timeline()) timeline.push_back({{"event", event}, {"at", at}});
  report["timeline"] = std::move(timeline);
  report["restarts"] = server.restarts;
  const double stage_s = phases.seconds("stage");
  report["throughput_gbps"] =
      loaded && stage_s > 0 ? static_cast<double>(loaded->staged.bytes) / stage_s / 1e9 : 0.0;
  if (!caches.is_null()) report["caches"] = caches;
  report["error"] = error ? json(error->message) : json(nullptr);
  if (error) report["exit_code"] = error->exit_code();
  if (auto ok = file.write(report.dump(2) + "\n"); !ok)
    log::warn(fmt::format("report not written: {}", ok.error().message));
}

}  // namespace tensorinit::app
