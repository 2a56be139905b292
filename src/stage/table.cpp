#include "stage/table.hpp"

#include <fmt/format.h>

#include <charconv>
#include <iterator>
#include <nlohmann/json.hpp>

#include "format/text.hpp"

namespace tensorinit::stage {
namespace {

// `text` as a JSON string. Text that is not UTF-8 goes through nlohmann, which throws for it as
// it always did (the index validates every name a file supplies, so only odd paths get there).
void append_json_string(std::string& out, std::string_view text) {
  if (format::invalid_utf8_at(text)) {
    out += nlohmann::json(std::string(text)).dump();
    return;
  }
  out += '"';
  const auto plain = [](char c) { return c != '"' && c != '\\' && static_cast<unsigned char>(c) >= 0x20; };
  for (size_t at = 0; at < text.size();) {
    size_t end = at;
    while (end < text.size() && plain(text[end])) ++end;
    out.append(text, at, end - at);  // a run at a time: most names are one run
    if (end == text.size()) break;
    const auto u = static_cast<unsigned char>(text[end]);
    if (u < 0x20) {
      fmt::format_to(std::back_inserter(out), "\\u{:04x}", u);
    } else {
      out += '\\';
      out += text[end];
    }
    at = end + 1;
  }
  out += '"';
}

void append_number(std::string& out, uint64_t n) {
  char digits[20];
  out.append(digits, std::to_chars(digits, digits + sizeof digits, n).ptr);
}

}  // namespace

// The tensors array is written directly: through nlohmann's DOM, 100,000 entries cost 0.93 s and
// about 1 KiB of memory each (a std::map per entry), measured here; this loop is linear and small.
std::string tensor_table_json(const TableSource& source, const format::ModelIndex& index, const StagedModel& staged) {
  using nlohmann::json;
  json table = {{"version", 1}, {"model", source.model}};
  table["source"] = {{"type", source.type}};
  if (source.path.empty()) table["source"]["url"] = source.url;
  else table["source"]["path"] = source.path;
  json arenas = json::array();
  for (size_t i = 0; i < staged.arenas.size(); ++i)
    arenas.push_back({{"index", i}, {"device", "host"}, {"bytes", staged.arenas[i].size()},
                      {"path", staged.arenas[i].path()}});
  for (const auto& device : staged.device_arenas)  // cuda: replicas with one layout; tensors name the first
    arenas.push_back({{"index", arenas.size()}, {"device", "cuda:" + std::to_string(device.device)}, {"bytes", device.bytes},
                      {"ipc", {{"kind", "cuda_ipc"}, {"handle", device.ipc_handle}, {"device", device.device},
                               {"uuid", device.uuid}}}});
  const bool pagecache = staged.target == Target::pagecache;
  if (!pagecache) table["arenas"] = std::move(arenas);
  std::string out = table.dump(1);  // "{\n ...\n}": the tensors go in before the closing brace
  out.resize(out.size() - 2);
  out.reserve(out.size() + index.tensors.size() * 128);
  out += ",\n \"tensors\": [";
  for (size_t i = 0; i < index.tensors.size(); ++i) {
    const auto& t = index.tensors[i];
    out += i ? ",\n  {\"name\": " : "\n  {\"name\": ";
    append_json_string(out, t.name);
    out += ", \"dtype\": ";
    append_json_string(out, t.dtype);
    out += ", \"shape\": [";
    for (size_t d = 0; d < t.shape.size(); ++d) {
      if (d) out += ", ";
      append_number(out, t.shape[d]);
    }
    out += ']';
    if (pagecache) {
      out += ", \"file\": ";
      append_json_string(out, index.files[t.file].path);
      out += ", \"file_offset\": ";
      append_number(out, t.file_offset);
    } else {
      out += ", \"arena\": 0, \"offset\": ";
      append_number(out, staged.layout.offsets[i]);
    }
    out += ", \"bytes\": ";
    append_number(out, t.bytes);
    out += '}';
  }
  out += index.tensors.empty() ? "]\n}\n" : "\n ]\n}\n";
  return out;
}

}  // namespace tensorinit::stage
