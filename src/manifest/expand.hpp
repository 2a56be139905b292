// ${VAR} / ${VAR:-default} expansion of manifest string values (contract: "expanded in every string
// value from the environment"). Pure: the environment is a lookup the caller passes, so tests need
// not touch the process environment.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace tensorinit::manifest {

// Returns the value of a variable, or nullopt when it is unset.
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;

// The process environment (getenv).
EnvLookup process_env();

// Caps, so that no manifest can exhaust the stack or memory: ${NAME:-default} defaults nest at
// most kMaxExpandDepth deep (a shell-style fallback chain needs a handful), and one value expands
// to at most kMaxExpandedBytes (a manifest is at most 1 MiB; an environment value at most 128 KiB,
// but 8 bytes of "${HUGE}" each could repeat one). Beyond either: an ExpandError.
inline constexpr unsigned kMaxExpandDepth = 32;
inline constexpr size_t kMaxExpandedBytes = 1 << 20;

struct ExpandError {
  std::string message;  // "environment variable X is not set (...)", no position: the caller adds it
};

// Expands in one pass, left to right:
//   ${NAME}          the variable's value; an error when it is unset
//   ${NAME:-word}    the value when set and non-empty, else word (itself expanded; may nest)
//   $$               a literal '$'
//   $x (any other)   left as written
// NAME is [A-Za-z_][A-Za-z0-9_]*. An unterminated "${" or a malformed reference is an error.
// Names listed in `keep` are not looked up: their whole reference is copied verbatim, for values
// that only exist later (handoff.command's ${TENSORINIT_MODEL_DIR}, filled in at handoff).
struct ExpandOptions {
  std::function<bool(std::string_view name)> keep;  // empty: expand every name
};
std::optional<std::string> expand(std::string_view text, const EnvLookup& env, ExpandError& error,
                                  const ExpandOptions& options = {});

// The variables the handoff sets for the server; handoff.command keeps references to them
// unexpanded at parse time (their values are only known once the source is chosen).
bool is_handoff_variable(std::string_view name);

// Fills in the references parse left in a handoff.command element: each ${NAME} / ${NAME:-word}
// whose NAME is a handoff variable is replaced from `values` (word when absent or empty). Nothing
// else in the text changes ("$$" was already turned into "$" by the parser).
std::string substitute_handoff_variables(std::string_view arg, const EnvLookup& values);

}  // namespace tensorinit::manifest
