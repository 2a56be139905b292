#include "format/shard_index.hpp"

#include <algorithm>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "format/text.hpp"

namespace tensorinit::format {
namespace {

using nlohmann::json;

constexpr uint32_t kNotAFile = UINT32_MAX;  // a weight_map value that is not a plain file name

// The last path segment of a file path or URL.
std::string_view file_name_of(std::string_view path) {
  const size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

// One pass of nlohmann's SAX parser (its lexer and its errors, no DOM): the weight_map's entries
// as written (a repeated key included: merged after), the distinct shard values, the last
// metadata.total_size. A key given twice at the top keeps its last value, as in a DOM.
class IndexReader final : public nlohmann::json_sax<json> {
 public:
  std::string names;
  std::vector<ShardIndex::Entry> entries;
  std::vector<std::string> values;  // distinct shard values, in the order first written
  bool top_object = false;
  bool has_map = false;  // the (last) weight_map is an object
  std::optional<uint64_t> total_size;
  std::string error;

  bool null() override { return scalar(); }
  bool boolean(bool) override { return scalar(); }
  bool number_integer(number_integer_t) override { return scalar(); }
  bool number_unsigned(number_unsigned_t v) override { return scalar(nullptr, v); }
  bool number_float(number_float_t, const string_t&) override { return scalar(); }
  bool string(string_t& s) override { return scalar(&s); }
  bool binary(binary_t&) override { return scalar(); }
  bool start_object(std::size_t) override { return open(true); }
  bool start_array(std::size_t) override { return open(false); }
  bool end_object() override { return --depth_, true; }
  bool end_array() override { return --depth_, true; }
  bool key(string_t& k) override {
    if (depth_ == 1) {
      field_ = k == "weight_map" ? Field::weight_map : k == "metadata" ? Field::metadata : Field::other;
      field_object_ = false;
      total_key_ = false;
      if (field_ == Field::weight_map) start_map();
      if (field_ == Field::metadata) total_size.reset();
    } else if (depth_ == 2 && field_ == Field::weight_map) {
      entries.push_back({.name_at = static_cast<uint32_t>(names.size()), .name_size = static_cast<uint32_t>(k.size())});
      names += k;
    } else if (depth_ == 2 && field_ == Field::metadata) {
      total_key_ = k == "total_size";
      if (total_key_) total_size.reset();
    }
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
    error = e.what();
    return false;
  }

 private:
  enum class Field { other, weight_map, metadata };

  // A value that is not a container; `text` for strings, `number` for unsigned integers.
  bool scalar(const std::string* text = nullptr, std::optional<uint64_t> number = std::nullopt) {
    if (depth_ != 2 || !field_object_) return true;  // not a member of the weight_map or metadata object
    if (field_ == Field::weight_map) entries.back().shard = text ? shard_id(*text) : kNotAFile;
    if (field_ == Field::metadata && total_key_) total_size = number;
    return true;
  }
  bool open(bool object) {
    if (depth_ == 0) top_object = object;
    if (depth_ == 1) field_object_ = object;
    if (depth_ == 1 && field_ == Field::weight_map) has_map = object;
    if (depth_ == 1 && field_ == Field::metadata && !object) total_size.reset();
    if (depth_ == 2) scalar();  // a container where a file name or a number belongs
    ++depth_;
    return true;
  }
  void start_map() {  // a weight_map key: what an earlier one held is replaced
    names.clear();
    entries.clear();
    values.clear();
    value_ids_.clear();
    last_id_ = 0;
    has_map = false;
  }
  uint32_t shard_id(const std::string& value) {
    if (!is_plain_file_name(value)) return kNotAFile;
    if (!values.empty() && values[last_id_] == value) return last_id_;  // neighbours share a shard
    auto [it, added] = value_ids_.try_emplace(value, static_cast<uint32_t>(values.size()));
    if (added) values.push_back(value);
    return last_id_ = it->second;
  }

  size_t depth_ = 0;
  Field field_ = Field::other;
  bool field_object_ = false;  // the top-level member being read is an object
  bool total_key_ = false;
  std::unordered_map<std::string, uint32_t> value_ids_;
  uint32_t last_id_ = 0;
};

// The entry whose name sorts first among those `pick` selects, or nullopt.
template <typename Pick>
std::optional<size_t> first_by_name(const ShardIndex& index, Pick&& pick) {
  std::optional<size_t> best;
  for (size_t i = 0; i < index.weight_map.size(); ++i)
    if (pick(i) && (!best || index.name(index.weight_map[i]) < index.name(index.weight_map[*best]))) best = i;
  return best;
}

}  // namespace

bool is_plain_file_name(std::string_view name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string_view::npos &&
         name.find('\0') == std::string_view::npos;
}

Result<ShardIndex> parse_shard_index(std::string_view text, const std::string& name) {
  IndexReader reader;
  if (!json::sax_parse(text.begin(), text.end(), &reader))
    // nlohmann quotes the bytes it last read, which may be invalid UTF-8 (the report is JSON).
    return fail(Code::bad_data, fmt::format("{}: not valid JSON: {}", name, utf8_escaped(reader.error)));
  if (!reader.top_object || !reader.has_map) return fail(Code::bad_data, fmt::format("{}: no \"weight_map\" object", name));
  ShardIndex out;
  out.names = std::move(reader.names);
  out.total_size = reader.total_size;
  out.by_name = NameTable(reader.entries.size());
  out.weight_map.reserve(reader.entries.size());
  for (const auto& e : reader.entries) {  // a repeated key: its last value, at its first place
    const auto at = out.by_name.insert(out.weight_map.size(), out.name(e), [&](size_t i) { return out.name(out.weight_map[i]); });
    if (at) out.weight_map[*at].shard = e.shard;
    else out.weight_map.push_back(e);
  }
  if (out.weight_map.empty()) return fail(Code::bad_data, fmt::format("{}: the weight_map is empty", name));
  if (auto bad = first_by_name(out, [&](size_t i) { return out.weight_map[i].shard == kNotAFile; }))
    return fail(Code::bad_data, fmt::format("{}: weight_map[{}] is not a file name", name,
                                            printable(out.name(out.weight_map[*bad]))));
  // The shards in the order a walk of the names in sorted order first meets them: each value's
  // first name, sorted. Values that only a replaced duplicate named are not shards.
  std::vector<std::optional<size_t>> first_name(reader.values.size());
  for (size_t i = 0; i < out.weight_map.size(); ++i) {
    auto& first = first_name[out.weight_map[i].shard];
    if (!first || out.name(out.weight_map[i]) < out.name(out.weight_map[*first])) first = i;
  }
  std::vector<uint32_t> order;
  for (uint32_t v = 0; v < first_name.size(); ++v)
    if (first_name[v]) order.push_back(v);
  std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
    return out.name(out.weight_map[*first_name[a]]) < out.name(out.weight_map[*first_name[b]]);
  });
  std::vector<uint32_t> renumber(reader.values.size());
  for (uint32_t k = 0; k < order.size(); ++k) {
    renumber[order[k]] = k;
    out.shards.push_back(std::move(reader.values[order[k]]));
  }
  for (auto& e : out.weight_map) e.shard = renumber[e.shard];
  return out;
}

Status check_against_index(const ModelIndex& model, const ShardIndex& index, const std::string& index_path) {
  std::vector<uint8_t> held(index.weight_map.size(), 0);
  for (const auto& t : model.tensors) {
    const auto at = index.find(t.name);
    if (at && held[*at])
      return fail(Code::bad_data, fmt::format("{}: tensor {} appears in more than one shard", index_path, printable(t.name)));
    const std::string_view shard = file_name_of(model.files[t.file].path);
    if (!at)
      return fail(Code::bad_data, fmt::format("{}: tensor {} in {} is not in the weight_map", index_path, printable(t.name), shard));
    held[*at] = 1;
    // A packed shard (NAME.zst, see format/packed_model.hpp) stands for the NAME the index lists.
    const std::string_view listed = index.shards[index.weight_map[*at].shard];
    const bool packed_copy = model.files[t.file].packed && shard.size() == listed.size() + 4 &&
                             shard.starts_with(listed) && shard.ends_with(".zst");
    if (listed != shard && !packed_copy)
      return fail(Code::bad_data, fmt::format("{}: tensor {} is in {} but the weight_map says {}", index_path,
                                              printable(t.name), shard, listed));
  }
  if (auto ghost = first_by_name(index, [&](size_t i) { return !held[i]; }))
    return fail(Code::bad_data, fmt::format("{}: tensor {} is listed but {} does not hold it", index_path,
                                            printable(index.name(index.weight_map[*ghost])),
                                            index.shards[index.weight_map[*ghost].shard]));
  if (index.total_size && *index.total_size != model.tensor_bytes())
    return fail(Code::bad_data, fmt::format("{}: total_size is {} but the shards hold {} tensor bytes", index_path,
                                            *index.total_size, model.tensor_bytes()));
  return {};
}

}  // namespace tensorinit::format
