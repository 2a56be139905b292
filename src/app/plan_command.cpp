// `tensorinit plan -f MANIFEST [--json]`: the decision, and why, without loading.
#include <cstdio>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "app/advise.hpp"
#include "app/commands.hpp"
#include "app/decision_json.hpp"
#include "plan/system_environment.hpp"
#include "util/redact.hpp"
#include "util/units.hpp"

namespace tensorinit::app {
namespace {

constexpr const char* kHelp = R"(usage: tensorinit plan -f MANIFEST [--json]
       tensorinit plan -f MANIFEST --advise [--pull-rate SIZE] [--image-rate SIZE]
                       [--volume-rate SIZE] [--volume-attach DURATION]

Probes every source candidate of the manifest (present? complete? readable? right
format?), applies model.policy and prints which source would be used and why, with
the bytes to load. Exits 66 when no candidate is usable, 65 when one is malformed.

--advise: bake the weights into the image, or keep them on a volume? Measures every
usable candidate (64 MiB each) and estimates the weight time of a cold start both
ways, on a fresh node (the image must be pulled first) and on one that has the image.
Rates are bytes per second, e.g. 200MB: --pull-rate (registry pull and unpack; default
200MB), --image-rate (local disk; default: an image candidate's measured rate, else
1100MB), --volume-rate (default: a volume candidate's measured rate), --volume-attach
(fixed cost of attaching the volume to a new node; default 0s).
)";

// Urls print redacted (util/url.hpp); paths are quoted with their control characters escaped.
std::string where(const manifest::Source& s) {
  if (!s.cached_from.empty()) return fmt::format("{} (model.cache of {})", printable(s.path), s.cached_from);
  return s.path.empty() ? s.url.redacted() : printable(s.path);
}

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

// A rate option (bytes per second, written as a size), or nullopt when absent.
Result<std::optional<double>> rate_option(Args& args, std::string_view name) {
  auto text = args.option(name);
  if (!text) return std::unexpected(text.error());
  if (!*text) return std::optional<double>();
  auto bytes = parse_size(**text);
  if (!bytes || *bytes == 0)
    return fail(Code::usage, fmt::format("plan: {} '{}' is not a rate (bytes per second, e.g. 200MB)", name, **text));
  return std::optional<double>(static_cast<double>(*bytes));
}

// The rates and costs given on the command line.
Result<AdviseInputs> advise_options(Args& args) {
  AdviseInputs in;
  auto pull = rate_option(args, "--pull-rate");
  auto image = rate_option(args, "--image-rate");
  auto volume = rate_option(args, "--volume-rate");
  auto attach = args.option("--volume-attach");
  if (!pull || !image || !volume || !attach)
    return std::unexpected(!pull ? pull.error() : !image ? image.error() : !volume ? volume.error() : attach.error());
  if (*attach) {
    auto d = parse_duration(**attach);
    if (!d) return fail(Code::usage, fmt::format("plan: --volume-attach '{}' is not a duration (e.g. 5s)", **attach));
    in.volume_attach_s = std::chrono::duration<double>(*d).count();
  }
  if (*pull) in.pull_bps = **pull;
  if (*image) in.image_read_bps = **image;
  if (*volume) in.volume_read_bps = **volume;
  return in;
}

// Measured rates fill in what the command line left open.
Result<int> print_advice(AdviseInputs in, const AdviseInputs& given, const manifest::Manifest& m) {
  manifest::Model measured = m.model;
  measured.policy = manifest::Policy::fastest;  // measures every usable candidate
  plan::SystemEnvironment env;
  const auto d = plan::decide(measured, env);
  if (!d.ok()) return std::unexpected(plan::no_usable_source(d));
  for (const auto& c : d.candidates) {
    if (!c.usable || !c.measured_bps) continue;
    const auto type = c.source.type;
    if (type == manifest::SourceType::image && !in.measured.empty() && in.measured.back() == "image") continue;
    if (type == manifest::SourceType::image) in.image_read_bps = *c.measured_bps;
    else if (type == manifest::SourceType::volume && in.volume_read_bps == 0) in.volume_read_bps = *c.measured_bps;
    else if (is_remote(type)) in.remote_bps = *c.measured_bps;
    else continue;
    in.measured.push_back(manifest::to_string(type));
  }
  if (given.image_read_bps != AdviseInputs{}.image_read_bps) in.image_read_bps = given.image_read_bps;
  if (given.volume_read_bps > 0) in.volume_read_bps = given.volume_read_bps;
  in.bytes = 0;
  for (const auto& f : d.index->files) in.bytes += f.size;
  const Advice advice = advise(in);
  fmt::print("model {}: {} to read at start; rates: image {:.2f} GB/s, pull {:.2f} GB/s, volume {}{}\n", m.model.name,
             format_bytes(in.bytes), in.image_read_bps / 1e9, in.pull_bps / 1e9,
             in.volume_read_bps > 0 ? fmt::format("{:.2f} GB/s", in.volume_read_bps / 1e9) : std::string("unknown"),
             in.measured.empty() ? "" : fmt::format(" (measured: {})", fmt::join(in.measured, ", ")));
  fmt::print("  {:<22} {:>14} {:>16}\n", "strategy", "fresh node", "image on node");
  for (const auto& row : advice.rows)
    fmt::print("  {:<22} {:>12.1f} s {:>14.1f} s\n", row.strategy, row.cold_node_s, row.warm_node_s);
  fmt::print("{}\n", advice.recommendation);
  return 0;
}

}  // namespace

Result<int> run_plan(Args& args) {
  if (args.flag("--help") || args.flag("-h")) return std::fputs(kHelp, stdout), 0;
  const bool json = args.flag("--json");
  const bool advise_flag = args.flag("--advise");
  std::optional<AdviseInputs> given;
  if (advise_flag) {
    auto options = advise_options(args);
    if (!options) return std::unexpected(options.error());
    given = *options;
  }
  auto path = manifest_path(args);
  if (!path) return std::unexpected(path.error());
  if (auto rest = args.positionals(0, 0); !rest) return std::unexpected(rest.error());
  if (!*path) return fail(Code::usage, "plan: -f MANIFEST (or TENSORINIT_MANIFEST) is required");
  auto m = read_manifest(**path);
  if (!m) return std::unexpected(m.error());
  if (given) {
    AdviseInputs defaults = *given;
    defaults.image_read_bps = AdviseInputs{}.image_read_bps;
    defaults.volume_read_bps = 0;
    return print_advice(defaults, *given, *m);
  }
  plan::SystemEnvironment env;
  const auto decision = plan::decide(m->model, env);
  json ? print_json(*m, decision) : print_text(*m, decision);
  if (!decision.ok()) return std::unexpected(plan::no_usable_source(decision));
  return 0;
}

}  // namespace tensorinit::app
