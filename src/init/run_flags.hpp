// `tensorinit run`'s command line, and the plain init it asks for when no manifest is named. In
// init (not app) because both programs run the plain init from here: the static first stage
// (src/first_stage) itself, and tensorinit-full (app/run_command.cpp) -- one parser, one loop,
// one set of exit codes.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "init/signals.hpp"
#include "util/args.hpp"
#include "util/error.hpp"

namespace tensorinit::init {

struct RunFlags {
  std::optional<std::string> manifest;  // -f, else $TENSORINIT_MANIFEST
  std::optional<std::chrono::milliseconds> grace;
  bool group = false;
  std::vector<std::string> command;  // after "--"
};

// -f, else $TENSORINIT_MANIFEST (when set and not empty), else nullopt. Not thread-safe (getenv).
Result<std::optional<std::string>> manifest_path(Args& args);

// The flags of `run` (after --help was looked for): Code::usage for a bad --grace, a missing
// value or an unknown option. Not thread-safe (getenv).
Result<RunFlags> parse_run_flags(Args& args);

// No manifest: supervise flags.command (Code::usage when there is none), grace default 10 s.
// Main thread, every signal blocked (init::supervise's conditions).
Result<int> run_plain_init(const RunFlags& flags, const InheritedSignals& inherited);

}  // namespace tensorinit::init
