// Typed, position-aware access to a yaml-cpp tree for the manifest parser. Every failure throws a
// Failure (Code::bad_manifest) whose message is "FILE:LINE:COL: key.path: what is wrong (what is
// allowed)"; parse.cpp converts it to a value at its boundary. Not thread-safe; one per parse.
#pragma once

#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "manifest/expand.hpp"

namespace tensorinit::manifest {

// One value in the tree: its dotted path ("stage.readers", "model.sources[1].url") and position.
struct Field {
  std::string path;
  YAML::Node node;
  YAML::Mark mark;  // the value's position; the key's for an empty (null) value
};

class Fields {
 public:
  Fields(std::string file, EnvLookup env) : file_(std::move(file)), env_(std::move(env)) {}

  const std::string& file() const { return file_; }
  // "FILE:LINE:COL" (1-based); "FILE" alone when the position is unknown.
  std::string where(const YAML::Mark& mark) const;
  [[noreturn]] void fail(const YAML::Mark& mark, std::string_view path, const std::string& what) const;
  [[noreturn]] void fail(const Field& field, const std::string& what) const {
    fail(field.mark, field.path, what);
  }

  // The entries of a map, after checking that it is one (null counts as empty), that every key is
  // a plain word listed in `allowed`, and that no key repeats.
  std::vector<std::pair<std::string, Field>> entries(const Field& map,
                                                     std::initializer_list<std::string_view> allowed) const {
    return entries(map, std::span<const std::string_view>(allowed.begin(), allowed.size()));
  }
  std::vector<std::pair<std::string, Field>> entries(const Field& map, std::span<const std::string_view> allowed) const;
  // The items of a list.
  std::vector<Field> items(const Field& list, std::string_view allowed) const;

  // A scalar's text after ${VAR} expansion. `allowed` describes valid values for the message.
  std::string text(const Field& field, std::string_view allowed, const ExpandOptions& options = {}) const;
  // As text(), but null (an empty value, `~`, `null`) gives "".
  std::string optional_text(const Field& field, std::string_view allowed) const;
  // A decimal integer within [min, max].
  int64_t integer(const Field& field, int64_t min, int64_t max, std::string_view allowed) const;
  uint64_t size(const Field& field, std::string_view allowed) const;
  std::chrono::milliseconds duration(const Field& field, std::string_view allowed) const;

  // One of a fixed set of words.
  template <class E>
  E word(const Field& field, std::initializer_list<std::pair<std::string_view, E>> words) const {
    return word(field, std::span<const std::pair<std::string_view, E>>(words.begin(), words.size()));
  }
  template <class E>
  E word(const Field& field, std::span<const std::pair<std::string_view, E>> words) const {
    std::string value = text(field, list_words(words));
    for (auto& [name, e] : words)
      if (value == name) return e;
    fail(field, quoted(field, value) + " is not valid (" + list_words(words) + ")");
  }

  static std::optional<int64_t> parse_integer(std::string_view text);

  // A value quoted for a message: 'value', or, when the scalar holds a ${VAR} reference, the
  // scalar as written ('${TOKEN}' (expanded)): an expanded value may be a secret that went into
  // the wrong key, and a message never prints what a variable holds.
  std::string quoted(const Field& field, std::string_view value) const;

 private:
  template <class E>
  static std::string list_words(std::span<const std::pair<std::string_view, E>> words) {
    std::string out;
    for (auto& [name, e] : words) {
      if (!out.empty()) out += " | ";
      out += name;
    }
    return out;
  }

  std::string file_;
  EnvLookup env_;
};

// Names a node type for messages: "a map", "a list", "an empty value", "a value".
std::string describe(const YAML::Node& node);

}  // namespace tensorinit::manifest
