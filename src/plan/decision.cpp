#include "plan/decision.hpp"

#include <fmt/format.h>

namespace tensorinit::plan {
namespace {

std::string describe(const manifest::Source& s) {
  const bool remote = s.type == manifest::SourceType::s3 || s.type == manifest::SourceType::http;
  return fmt::format("{} {}", manifest::to_string(s.type), remote ? s.url : s.path);
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
    candidates[i].measured_bps = env.measure_read_rate(candidates[i].source, *probes[i].index);
    if (best < 0 || *candidates[i].measured_bps > *candidates[static_cast<size_t>(best)].measured_bps)
      best = static_cast<int>(i);
  }
  return best;
}

}  // namespace

Error no_usable_source(const Decision& decision) {
  std::string reasons;
  for (const auto& c : decision.candidates) reasons += fmt::format("; {}: {}", describe(c.source), c.reason);
  return Error{decision.any_malformed ? Code::bad_data : Code::no_source,
               fmt::format("no usable weight source{}", reasons)};
}

Decision decide(const manifest::Model& model, Environment& env) {
  Decision decision;
  std::vector<CandidateProbe> probes;
  for (const auto& source : model.sources) {
    probes.push_back(env.probe(source, model.format));
    CandidateReport report{.source = source};
    if (probes.back().fault) {
      report.reason = probes.back().fault->message;
      decision.any_malformed |= probes.back().fault->code == Code::bad_data;
    } else {
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
