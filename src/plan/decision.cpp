#include "plan/decision.hpp"

#include <fmt/format.h>

#include "util/redact.hpp"

namespace tensorinit::plan {
namespace {

std::string describe(const manifest::Source& s) {
  if (!s.cached_from.empty()) return fmt::format("cache {}", s.path);
  return fmt::format("{} {}", manifest::to_string(s.type), is_remote(s.type) ? s.url.redacted() : s.path);
}

int pick_ordered(const std::vector<CandidateReport>& candidates) {
  for (size_t i = 0; i < candidates.size(); ++i)
    if (candidates[i].usable) return static_cast<int>(i);
  return -1;
}

int pick_fastest(std::vector<CandidateReport>& candidates, const std::vector<CandidateProbe>& probes,
                 Environment& env) {
  int best = -1;
  for (size_t i = 0; i < candidates.size(); ++i) {
    if (!candidates[i].usable) continue;
    candidates[i].measured_bps = env.measure_read_rate(candidates[i].source, probes[i]);
    if (best < 0 || *candidates[i].measured_bps > *candidates[static_cast<size_t>(best)].measured_bps)
      best = static_cast<int>(i);
  }
  return best;
}

}  // namespace

Error no_usable_source(const Decision& decision) {
  std::string reasons;
  for (const auto& c : decision.candidates) reasons += fmt::format("; {}: {}", describe(c.source), c.reason);
  return Error{decision.any_malformed ? Code::bad_data : decision.worst_fault,
               fmt::format("no usable weight source{}", reasons)};
}

std::vector<manifest::Source> candidate_sources(const manifest::Model& model) {
  std::vector<manifest::Source> out;
  for (const auto& source : model.sources) {
    if (is_remote(source.type) && !model.cache.empty()) {
      manifest::Source cache{.type = manifest::SourceType::volume,
                             .path = fmt::format("{}/{}", model.cache, model.name),
                             .where = source.where};
      cache.files = source.files;
      cache.cached_from = source.url;
      out.push_back(std::move(cache));
    }
    out.push_back(source);
  }
  return out;
}

Decision decide(const manifest::Model& model, Environment& env) {
  Decision decision;
  std::vector<CandidateProbe> probes;
  bool found = false;
  for (const auto& source : candidate_sources(model)) {
    CandidateReport report{.source = source};
    if (found && is_remote(source.type) && model.policy == manifest::Policy::ordered) {
      report.reason = "not probed: an earlier candidate is usable";
      probes.emplace_back();
      decision.candidates.push_back(std::move(report));
      continue;
    }
    probes.push_back(env.probe(source, model.format));
    if (probes.back().fault) {
      report.reason = probes.back().fault->message;
      const Code code = probes.back().fault->code;
      decision.any_malformed |= code == Code::bad_data;
      if (code == Code::denied || (code == Code::unavailable && decision.worst_fault != Code::denied))
        decision.worst_fault = code;
    } else {
      found = true;
      report.usable = true;
      report.bytes = probes.back().index->tensor_bytes();
    }
    decision.candidates.push_back(std::move(report));
  }
  decision.chosen = model.policy == manifest::Policy::fastest ? pick_fastest(decision.candidates, probes, env)
                                                              : pick_ordered(decision.candidates);
  if (decision.chosen < 0) return decision;
  const auto chosen = static_cast<size_t>(decision.chosen);
  decision.index = std::move(probes[chosen].index);
  decision.remote = std::move(probes[chosen].remote);
  if (model.policy == manifest::Policy::fastest)
    decision.why = fmt::format("fastest usable source ({:.2f} GB/s measured)",
                               *decision.candidates[chosen].measured_bps / 1e9);
  else if (chosen == 0)
    decision.why = "first candidate, usable";
  else
    decision.why = fmt::format("first usable candidate (earlier ones: {})", decision.candidates[0].reason);
  return decision;
}

}  // namespace tensorinit::plan
