// `tensorinit plan -f MANIFEST [--json]`: the decision, and why, without loading.
#include <cstdio>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "app/commands.hpp"
#include "app/decision_json.hpp"
#include "plan/local_environment.hpp"
#include "util/units.hpp"

namespace tensorinit::app {
namespace {

constexpr const char* kHelp = R"(usage: tensorinit plan -f MANIFEST [--json]

Probes every source candidate of the manifest (present? complete? readable? right
format?), applies model.policy and prints which source would be used and why, with
the bytes to load. Exits 66 when no candidate is usable, 65 when one is malformed.
)";

std::string where(const manifest::Source& s) { return s.path.empty() ? s.url : s.path; }

void print_json(const manifest::Manifest& m, const plan::Decision& d) {
  nlohmann::json out = decision_json(d);
  out["model"] = m.model.name;
  out["policy"] = m.model.policy == manifest::Policy::fastest ? "fastest" : "ordered";
  if (d.ok()) {
    out["bytes"] = d.index->tensor_bytes();
    out["files"] = d.index->files.size();
    out["tensors"] = d.index->tensors.size();
  }
  std::puts(out.dump(2).c_str());
}

void print_text(const manifest::Manifest& m, const plan::Decision& d) {
  fmt::print("model {}: {} candidate(s), policy {}\n", m.model.name, d.candidates.size(),
             m.model.policy == manifest::Policy::fastest ? "fastest" : "ordered");
  for (size_t i = 0; i < d.candidates.size(); ++i) {
    const auto& c = d.candidates[i];
    const std::string rate = c.measured_bps ? fmt::format(", {:.2f} GB/s measured", *c.measured_bps / 1e9) : "";
    fmt::print("  {} {:<6} {}: {}{}\n", static_cast<int>(i) == d.chosen ? "*" : " ", manifest::to_string(c.source.type),
               where(c.source), c.usable ? fmt::format("usable, {}", format_bytes(c.bytes)) : "unusable: " + c.reason, rate);
  }
  if (d.chosen >= 0)
    fmt::print("chosen: {} {} ({}); {} tensors, {} bytes in {} file(s)\n", manifest::to_string(d.chosen_source().type),
               where(d.chosen_source()), d.why, d.index->tensors.size(), d.index->tensor_bytes(), d.index->files.size());
}

}  // namespace

Result<int> run_plan(Args& args) {
  if (args.flag("--help") || args.flag("-h")) return std::fputs(kHelp, stdout), 0;
  const bool json = args.flag("--json");
  auto path = manifest_path(args);
  if (!path) return std::unexpected(path.error());
  if (auto rest = args.positionals(0, 0); !rest) return std::unexpected(rest.error());
  if (!*path) return fail(Code::usage, "plan: -f MANIFEST (or TENSORINIT_MANIFEST) is required");
  auto m = read_manifest(**path);
  if (!m) return std::unexpected(m.error());
  plan::LocalEnvironment env;
  const auto decision = plan::decide(m->model, env);
  json ? print_json(*m, decision) : print_text(*m, decision);
  if (!decision.ok()) return std::unexpected(plan::no_usable_source(decision));
  return 0;
}

}  // namespace tensorinit::app
