#include "manifest/fields.hpp"

#include <algorithm>
#include <charconv>

#include "util/error.hpp"
#include "util/redact.hpp"
#include "util/units.hpp"

namespace tensorinit::manifest {
namespace {

// Edit distance, for "did you mean" on unknown keys (keys are short: quadratic is fine).
size_t distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1])});
      diagonal = up;
    }
  }
  return row[b.size()];
}

std::string child_path(std::string_view parent, std::string_view key) {
  if (parent.empty()) return std::string(key);
  return std::string(parent) + "." + std::string(key);
}

bool known_mark(const YAML::Mark& mark) { return mark.line >= 0 && mark.column >= 0; }

}  // namespace

std::string describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map: return "a map";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined: return "an empty value";
    case YAML::NodeType::Scalar: return "a value";
  }
  return "a value";
}

std::string Fields::where(const YAML::Mark& mark) const {
  if (!known_mark(mark)) return file_;
  return file_ + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
}

void Fields::fail(const YAML::Mark& mark, std::string_view path, const std::string& what) const {
  std::string message = where(mark) + ": ";
  if (!path.empty()) message += std::string(path) + ": ";
  // Messages quote what the user wrote: escaped, so that a NUL or a newline cannot split the line.
  raise(Code::bad_manifest, printable(message + what));
}

std::vector<std::pair<std::string, Field>> Fields::entries(const Field& map,
                                                          std::span<const std::string_view> allowed) const {
  std::vector<std::pair<std::string, Field>> out;
  if (map.node.IsNull()) return out;
  std::string allowed_list;
  for (auto name : allowed) allowed_list += (allowed_list.empty() ? "" : ", ") + std::string(name);
  if (!map.node.IsMap())
    fail(map, "expected a map, got " + describe(map.node) + " (keys: " + allowed_list + ")");
  for (auto it = map.node.begin(); it != map.node.end(); ++it) {
    YAML::Node key = it->first;  // copies: the iterator hands out a temporary pair
    if (!key.IsScalar())
      fail(key.Mark(), map.path, "a key must be a plain word, got " + describe(key) + " (keys: " + allowed_list + ")");
    const std::string& name = key.Scalar();
    if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
      std::string hint;
      for (auto candidate : allowed)
        if (distance(name, candidate) <= 2) hint = "did you mean '" + std::string(candidate) + "'? ";
      std::string where_in = map.path.empty() ? "at the top level" : "in " + map.path;
      fail(key.Mark(), "", "unknown key '" + name + "' " + where_in + " (" + hint + "allowed: " + allowed_list + ")");
    }
    for (auto& [seen, field] : out)
      if (seen == name)
        fail(key.Mark(), child_path(map.path, name),
             "duplicate key (first given at line " + std::to_string(field.mark.line + 1) + ")");
    YAML::Node value = it->second;
    YAML::Mark mark = value.IsNull() || !known_mark(value.Mark()) ? key.Mark() : value.Mark();
    out.emplace_back(name, Field{child_path(map.path, name), value, mark});
  }
  return out;
}

std::vector<Field> Fields::items(const Field& list, std::string_view allowed) const {
  if (!list.node.IsSequence())
    fail(list, "expected a list, got " + describe(list.node) + " (" + std::string(allowed) + ")");
  std::vector<Field> out;
  size_t index = 0;
  for (const YAML::Node& item : list.node) {
    YAML::Mark mark = known_mark(item.Mark()) ? item.Mark() : list.mark;
    out.push_back(Field{list.path + "[" + std::to_string(index++) + "]", item, mark});
  }
  return out;
}

std::string Fields::text(const Field& field, std::string_view allowed, const ExpandOptions& options) const {
  if (!field.node.IsScalar())
    fail(field, "expected a value, got " + describe(field.node) + " (" + std::string(allowed) + ")");
  // YAML's "\0" escape puts a NUL in a scalar: every path, name and URL would be cut short at it
  // by the C calls that take it. Refused, like a NUL byte in the file.
  if (field.node.Scalar().find('\0') != std::string::npos)
    fail(field, "a NUL character (\\0) in a value (" + std::string(allowed) + ")");
  ExpandError error;
  auto expanded = expand(field.node.Scalar(), env_, error, options);
  if (!expanded) fail(field, error.message);
  return *expanded;
}

std::string Fields::optional_text(const Field& field, std::string_view allowed) const {
  if (field.node.IsNull()) return "";
  return text(field, allowed);
}

std::string Fields::quoted(const Field& field, std::string_view value) const {
  if (field.node.IsScalar() && field.node.Scalar().find("${") != std::string::npos)
    return "'" + field.node.Scalar() + "' (expanded)";
  return "'" + std::string(value) + "'";
}

std::optional<int64_t> Fields::parse_integer(std::string_view text) {
  if (text.empty()) return std::nullopt;
  if (text.front() == '+') return std::nullopt;  // from_chars rejects it anyway; be explicit
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

int64_t Fields::integer(const Field& field, int64_t min, int64_t max, std::string_view allowed) const {
  std::string value = text(field, allowed);
  auto number = parse_integer(value);
  if (!number || *number < min || *number > max)
    fail(field, quoted(field, value) + " is not valid (" + std::string(allowed) + ")");
  return *number;
}

uint64_t Fields::size(const Field& field, std::string_view allowed) const {
  std::string value = text(field, allowed);
  auto bytes = parse_size(value);
  if (!bytes)
    fail(field, quoted(field, value) + " is not a size (" + std::string(allowed) +
                    "; a number with B, KiB, MiB, GiB, TiB, KB, MB, GB or TB, e.g. 16MiB)");
  return *bytes;
}

std::chrono::milliseconds Fields::duration(const Field& field, std::string_view allowed) const {
  std::string value = text(field, allowed);
  auto ms = parse_duration(value);
  if (!ms)
    fail(field, quoted(field, value) + " is not a duration (" + std::string(allowed) +
                    "; a number with ms, s or m, e.g. 10s)");
  return *ms;
}

}  // namespace tensorinit::manifest
