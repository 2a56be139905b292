// The real Environment: local paths through format/, remote sources refused until they exist.
#pragma once

#include "plan/decision.hpp"

namespace tensorinit::plan {

class LocalEnvironment final : public Environment {
 public:
  CandidateProbe probe(const manifest::Source& source, manifest::Format format) override;
  double measure_read_rate(const manifest::Source& source, const format::ModelIndex& index) override;

  // Time spent reading and validating headers (the report's "index" phase).
  double index_seconds() const { return index_seconds_; }

 private:
  double index_seconds_ = 0;
};

}  // namespace tensorinit::plan
