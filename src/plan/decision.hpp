// Where the weights come from: a pure decision over the manifest and a probe of the environment.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "format/tensor_index.hpp"
#include "manifest/manifest.hpp"
#include "plan/remote_model.hpp"
#include "util/error.hpp"

namespace tensorinit::plan {

// What the environment says about one candidate source.
struct CandidateProbe {
  std::optional<format::ModelIndex> index;  // set when usable
  std::optional<Error> fault;               // why not usable (code says what kind)
  std::shared_ptr<const RemoteModel> remote;  // s3, http: the opened files (pinned versions)
};

// The seam the decision runs over; tests fake it. Not thread-safe; called from one thread.
class Environment {
 public:
  virtual ~Environment() = default;
  // Indexes the candidate's files and checks every size against the headers; a local index keeps
  // each file's descriptor for staging. A path that cannot be examined is a fault. Remote sources are
  // opened (network requests); a cache candidate (source.cached_from set) is checked against its
  // records.
  virtual CandidateProbe probe(const manifest::Source& source, manifest::Format format) = 0;
  // A short read of a usable candidate's largest file (direct where possible, a ranged GET when
  // remote); bytes per second (policy `fastest`).
  virtual double measure_read_rate(const manifest::Source& source, const CandidateProbe& probe) = 0;
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
  std::shared_ptr<const RemoteModel> remote;  // the chosen candidate's, when it is remote
  std::string why;                     // one line for humans
  bool any_malformed = false;          // a candidate had a malformed file
  Code worst_fault = Code::no_source;  // what no_usable_source reports

  bool ok() const { return chosen >= 0; }

  const manifest::Source& chosen_source() const { return candidates.at(static_cast<size_t>(chosen)).source; }
};

// The candidates of a model: its sources in order, each remote one preceded (when model.cache is
// set) by a volume candidate for the cache directory <cache>/<name> holding its files.
std::vector<manifest::Source> candidate_sources(const manifest::Model& model);

// Probes the candidates (so `plan` can say why each is or is not usable) and picks one
// (chosen = -1 when none is usable). With policy ordered, remote candidates after a usable one
// are not probed (each costs round trips, and retries when unreachable).
Decision decide(const manifest::Model& model, Environment& env);

// Why nothing is usable, as the most telling fault: Code::bad_data if a candidate was malformed,
// else Code::denied (credentials refused), else Code::unavailable (unreachable after retries),
// else Code::no_source; the message lists every candidate's reason.
Error no_usable_source(const Decision& decision);

}  // namespace tensorinit::plan
