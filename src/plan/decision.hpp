// Where the weights come from: a pure decision over the manifest and a probe of the environment.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "format/tensor_index.hpp"
#include "manifest/manifest.hpp"
#include "util/error.hpp"

namespace tensorinit::plan {

// What the environment says about one candidate source.
struct CandidateProbe {
  std::optional<format::ModelIndex> index;  // set when usable
  std::optional<Error> fault;               // why not usable (code says what kind)
};

// The seam the decision runs over; tests fake it. Not thread-safe; called from one thread.
class Environment {
 public:
  virtual ~Environment() = default;
  // Indexes the candidate's files and checks every size against the headers.
  virtual CandidateProbe probe(const manifest::Source& source, manifest::Format format) = 0;
  // A short direct read of the candidate's files; bytes per second (policy `fastest`).
  virtual double measure_read_rate(const manifest::Source& source, const format::ModelIndex& index) = 0;
};

struct CandidateReport {
  manifest::Source source;
  bool usable = false;
  std::string reason;                  // why not usable; empty when usable
  uint64_t bytes = 0;                  // tensor bytes to load (usable ones)
  std::optional<double> measured_bps;  // policy `fastest`
};

struct Decision {
  int chosen = -1;                     // index into candidates
  std::vector<CandidateReport> candidates;
  std::optional<format::ModelIndex> index;  // the chosen candidate's
  std::string why;                     // one line for humans
  bool any_malformed = false;          // a candidate had a malformed file

  bool ok() const { return chosen >= 0; }

  const manifest::Source& chosen_source() const { return candidates.at(static_cast<size_t>(chosen)).source; }
};

// Probes every candidate (so `plan` can say why each is or is not usable) and picks one
// (chosen = -1 when none is usable).
Decision decide(const manifest::Model& model, Environment& env);

// Why nothing is usable: Code::bad_data if a candidate was malformed, else Code::no_source; the
// message lists every candidate's reason.
Error no_usable_source(const Decision& decision);

}  // namespace tensorinit::plan
