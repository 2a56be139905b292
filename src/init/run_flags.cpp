#include "init/run_flags.hpp"

#include <cstdlib>
#include <fmt/format.h>

#include "init/supervisor.hpp"
#include "util/units.hpp"

namespace tensorinit::init {

Result<std::optional<std::string>> manifest_path(Args& args) {
  auto f = args.option("-f");
  if (!f) return f;
  if (*f) return f;
  if (const char* env = std::getenv("TENSORINIT_MANIFEST"); env && *env) return std::optional<std::string>(env);
  return std::optional<std::string>();
}

Result<RunFlags> parse_run_flags(Args& args) {
  RunFlags flags;
  flags.command = args.after_double_dash();
  flags.group = args.flag("--group");
  auto grace = args.option("--grace");
  if (!grace) return std::unexpected(grace.error());
  if (*grace) {
    flags.grace = parse_duration(**grace);
    if (!flags.grace) return fail(Code::usage, fmt::format("run: --grace '{}' is not a duration (e.g. 10s, 500ms)", **grace));
  }
  auto path = manifest_path(args);
  if (!path) return std::unexpected(path.error());
  flags.manifest = *path;
  if (auto rest = args.positionals(0, 0); !rest) return std::unexpected(rest.error());
  return flags;
}

Result<int> run_plain_init(const RunFlags& flags, const InheritedSignals& inherited) {
  if (flags.command.empty()) return fail(Code::usage, "run: no manifest and no COMMAND after '--': nothing to run");
  Options options{.command = flags.command, .grace = flags.grace.value_or(std::chrono::seconds(10)), .group = flags.group};
  return supervise(options, inherited);
}

}  // namespace tensorinit::init
