// The real Environment: local paths through format/, cache directories checked against their
// records, remote sources opened over HTTP(S) (plan/remote_model.hpp).
#pragma once

#include <stop_token>

#include "plan/decision.hpp"

namespace tensorinit::plan {

class SystemEnvironment final : public Environment {
 public:
  explicit SystemEnvironment(std::stop_token stop = {}) : stop_(std::move(stop)) {}

  CandidateProbe probe(const manifest::Source& source, manifest::Format format) override;
  double measure_read_rate(const manifest::Source& source, const CandidateProbe& probe) override;

  // Time spent reading and validating headers (the report's "index" phase).
  double index_seconds() const { return index_seconds_; }

 private:
  CandidateProbe probe_source(const manifest::Source& source, manifest::Format format);

  std::stop_token stop_;
  double index_seconds_ = 0;
};

// A cache candidate (source.cached_from set): usable when every expected file has a record naming
// the remote url it came from and the file's exact size; a file without one is an interrupted
// fill and is never read. Any fault is Code::no_source (the cache is a copy, never bad data).
Result<format::ModelIndex> index_cache(const manifest::Source& cache, manifest::Format format);

}  // namespace tensorinit::plan
