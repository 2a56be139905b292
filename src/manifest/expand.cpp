#include "manifest/expand.hpp"

#include <cstdlib>

#include <fmt/format.h>

namespace tensorinit::manifest {
namespace {

bool is_name_start(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; }
bool is_name_char(char c) { return is_name_start(c) || (c >= '0' && c <= '9'); }

// A parsed "${NAME}" or "${NAME:-word}" starting at text[start] (which is '$', then '{').
struct Reference {
  std::string_view name;
  std::optional<std::string_view> word;  // the default, unexpanded
  size_t end = 0;                        // one past the closing '}'
};

// Finds the '}' closing a default word that starts at `from`, skipping nested "${...}" and "$$".
std::optional<size_t> closing_brace(std::string_view text, size_t from) {
  int depth = 0;
  for (size_t j = from; j < text.size(); ++j) {
    if (text[j] == '$' && j + 1 < text.size() && (text[j + 1] == '$' || text[j + 1] == '{')) {
      if (text[j + 1] == '{') ++depth;
      ++j;
    } else if (text[j] == '}') {
      if (depth == 0) return j;
      --depth;
    }
  }
  return std::nullopt;
}

std::optional<Reference> parse_reference(std::string_view text, size_t start, std::string* why) {
  size_t i = start + 2;
  size_t name_begin = i;
  if (i < text.size() && is_name_start(text[i])) {
    while (i < text.size() && is_name_char(text[i])) ++i;
  }
  Reference ref;
  ref.name = text.substr(name_begin, i - name_begin);
  if (text.find('}', start) == std::string_view::npos) {
    if (why) *why = "unterminated '${' (write ${NAME} or ${NAME:-default}; '$$' is a literal '$')";
    return std::nullopt;
  }
  if (ref.name.empty()) {
    if (why) *why = "malformed reference '" + std::string(text.substr(start, text.find('}', start) - start + 1)) +
                    "' (a variable name is [A-Za-z_][A-Za-z0-9_]*)";
    return std::nullopt;
  }
  if (i < text.size() && text[i] == '}') {
    ref.end = i + 1;
    return ref;
  }
  if (i + 1 < text.size() && text[i] == ':' && text[i + 1] == '-') {
    auto close = closing_brace(text, i + 2);
    if (!close) {
      if (why) *why = "unterminated '${" + std::string(ref.name) + ":-' (missing '}')";
      return std::nullopt;
    }
    ref.word = text.substr(i + 2, *close - (i + 2));
    ref.end = *close + 1;
    return ref;
  }
  if (why)
    *why = "malformed reference '${" + std::string(ref.name) + std::string(text.substr(i, 1)) +
           "...' (only ${NAME} and ${NAME:-default} are supported)";
  return std::nullopt;
}

}  // namespace

EnvLookup process_env() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* value = std::getenv(name.c_str());
    if (!value) return std::nullopt;
    return std::string(value);
  };
}

namespace {

// `depth`: how many ${NAME:-...} defaults enclose `text`. The stack holds one frame per level, and
// a 120 KB value nested 20000 deep once overflowed it (SIGSEGV): levels are capped.
std::optional<std::string> expand_at(std::string_view text, const EnvLookup& env, ExpandError& error,
                                     const ExpandOptions& options, unsigned depth) {
  if (depth > kMaxExpandDepth) {
    error.message = fmt::format("${{NAME:-default}} nested more than {} deep", kMaxExpandDepth);
    return std::nullopt;
  }
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    if (text[i] != '$' || i + 1 >= text.size() || (text[i + 1] != '$' && text[i + 1] != '{')) {
      out += text[i++];
      continue;
    }
    if (text[i + 1] == '$') {
      out += '$';
      i += 2;
      continue;
    }
    std::string why;
    auto ref = parse_reference(text, i, &why);
    if (!ref) {
      error.message = std::move(why);
      return std::nullopt;
    }
    if (options.keep && options.keep(ref->name)) {
      out.append(text.substr(i, ref->end - i));
      i = ref->end;
      continue;
    }
    std::string name(ref->name);
    auto value = env(name);
    if (ref->word) {
      if (value && !value->empty()) {
        out += *value;
      } else {
        auto word = expand_at(*ref->word, env, error, options, depth + 1);
        if (!word) return std::nullopt;
        out += *word;
      }
    } else {
      if (!value) {
        error.message = "environment variable " + name + " is not set (set it, or write ${" + name +
                        ":-default})";
        return std::nullopt;
      }
      out += *value;
    }
    i = ref->end;
    if (out.size() > kMaxExpandedBytes) {
      error.message = fmt::format("the value expands to more than {} bytes", kMaxExpandedBytes);
      return std::nullopt;
    }
  }
  if (out.size() > kMaxExpandedBytes) {
    error.message = fmt::format("the value expands to more than {} bytes", kMaxExpandedBytes);
    return std::nullopt;
  }
  return out;
}

}  // namespace

std::optional<std::string> expand(std::string_view text, const EnvLookup& env, ExpandError& error,
                                  const ExpandOptions& options) {
  return expand_at(text, env, error, options, 0);
}

bool is_handoff_variable(std::string_view name) {
  return name == "TENSORINIT_MODEL_DIR" || name == "TENSORINIT_TABLE" || name == "TENSORINIT_SOURCE";
}

std::string substitute_handoff_variables(std::string_view arg, const EnvLookup& values) {
  std::string out;
  out.reserve(arg.size());
  for (size_t i = 0; i < arg.size();) {
    if (arg[i] == '$' && i + 1 < arg.size() && arg[i + 1] == '{') {
      auto ref = parse_reference(arg, i, nullptr);
      if (ref && is_handoff_variable(ref->name)) {
        auto value = values(std::string(ref->name));
        if (value && !value->empty()) out += *value;
        else if (ref->word) out.append(*ref->word);
        i = ref->end;
        continue;
      }
    }
    out += arg[i++];
  }
  return out;
}

}  // namespace tensorinit::manifest
