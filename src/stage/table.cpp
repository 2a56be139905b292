#include "stage/table.hpp"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <system_error>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "format/text.hpp"
#include "stage/layout.hpp"

namespace tensorinit::stage {
namespace {

// Text written through a pointer into room made ahead (no capacity check per character): the
// tensors array of 100,000 entries took 23 ms appended to a std::string piece by piece, measured
// here. Not thread-safe.
class TextBuffer {
 public:
  explicit TextBuffer(size_t expected) { text_.reserve(expected); }
  // At least `n` bytes to write at the returned position; `commit` says where the writing ended.
  // Made 1 MiB at a time (zeroed by resize: pages far past the end stay untouched).
  char* room(size_t n) {
    if (text_.size() - used_ < n) text_.resize(std::max(used_ + n, text_.size() + (size_t{1} << 20)));
    return text_.data() + used_;
  }
  void commit(const char* end) { used_ = static_cast<size_t>(end - text_.data()); }
  std::string take() && {
    text_.resize(used_);
    return std::move(text_);
  }

 private:
  std::string text_;
  size_t used_ = 0;
};

char* put(char* at, std::string_view text) { return static_cast<char*>(std::memcpy(at, text.data(), text.size())) + text.size(); }

char* put_number(char* at, uint64_t n) { return std::to_chars(at, at + 20, n).ptr; }

// The most a JSON string of `text` takes: quotes and every byte as \u00XX.
size_t string_room(std::string_view text) { return 2 + 6 * text.size(); }

// `text` as a JSON string at `at` (string_room(text) bytes free). Text that is not UTF-8 goes
// through nlohmann, which throws for it as it always did (the index validates every name a file
// supplies, so only odd paths get there).
char* put_string(char* at, std::string_view text) {
  if (format::invalid_utf8_at(text)) return put(at, nlohmann::json(std::string(text)).dump());
  *at++ = '"';
  static constexpr char hex[] = "0123456789abcdef";
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && c != '"' && c != '\\') {
      *at++ = c;
    } else if (u >= 0x20) {
      *at++ = '\\';
      *at++ = c;
    } else {
      at = put(at, "\\u00");
      *at++ = hex[u >> 4];
      *at++ = hex[u & 15];
    }
  }
  *at++ = '"';
  return at;
}

// The table without its tensors: "{\n ...\n}" less the closing "\n}".
std::string table_head(const TableSource& source, const StagedModel& staged) {
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
  if (staged.target != Target::pagecache) table["arenas"] = std::move(arenas);
  std::string out = table.dump(1);
  out.resize(out.size() - 2);
  return out;
}

// The tensors array is written directly: through nlohmann's DOM, 100,000 entries cost 0.93 s and
// about 1 KiB of memory each (a std::map per entry), measured here; this loop is linear and small.
// nullopt once `stop` is requested.
std::optional<std::string> tensors_text(const format::ModelIndex& index, std::span<const uint64_t> offsets,
                                        bool pagecache, std::stop_token stop) {
  TextBuffer out(index.tensors.size() * 128 + 2);
  for (size_t i = 0; i < index.tensors.size(); ++i) {
    if (i % 4096 == 0 && stop.stop_requested()) return std::nullopt;
    const auto& t = index.tensors[i];
    const std::string_view file = pagecache ? std::string_view(index.files[t.file].path) : std::string_view();
    char* at = out.room(96 + string_room(t.name) + string_room(t.dtype) + 22 * t.shape.size() + string_room(file) + 3 * 20);
    at = put(at, i ? ",\n  {\"name\": " : "\n  {\"name\": ");
    at = put_string(at, t.name);
    at = put(at, ", \"dtype\": ");
    at = put_string(at, t.dtype);
    at = put(at, ", \"shape\": [");
    for (size_t d = 0; d < t.shape.size(); ++d) {
      if (d) at = put(at, ", ");
      at = put_number(at, t.shape[d]);
    }
    *at++ = ']';
    if (pagecache) {
      at = put(at, ", \"file\": ");
      at = put_string(at, file);
      at = put(at, ", \"file_offset\": ");
      at = put_number(at, t.file_offset);
    } else {
      at = put(at, ", \"arena\": 0, \"offset\": ");
      at = put_number(at, offsets[i]);
    }
    at = put(at, ", \"bytes\": ");
    at = put_number(at, t.bytes);
    *at++ = '}';
    out.commit(at);
  }
  if (!index.tensors.empty()) out.commit(put(out.room(2), "\n "));
  return std::move(out).take();
}

}  // namespace

std::string table_tensors_text(const format::ModelIndex& index, std::span<const uint64_t> offsets, bool pagecache) {
  return *tensors_text(index, offsets, pagecache, {});
}

std::string tensor_table_json(const TableSource& source, const StagedModel& staged, std::string tensors) {
  // In place: the text keeps the room it was built in (a copy of 11 MB, and its new pages, would
  // cost more than the move).
  tensors.insert(0, table_head(source, staged) + ",\n \"tensors\": [");
  tensors += "]\n}\n";
  return tensors;
}

std::string tensor_table_json(const TableSource& source, const format::ModelIndex& index, const StagedModel& staged) {
  return tensor_table_json(source, staged,
                           table_tensors_text(index, staged.layout.offsets, staged.target == Target::pagecache));
}

TableTensorsAhead::TableTensorsAhead(const format::ModelIndex& index, std::stop_token stop) : index_(index) {
  try {
    thread_ = std::jthread([this](std::stop_token own) {
      // A throw left here would std::terminate (134, no error line): take() builds the text
      // again on the caller's thread, whose throw reaches the exit-code boundary.
      try {
        offsets_ = layout_arena(index_).offsets;
        text_ = tensors_text(index_, offsets_, false, own);
      } catch (const std::exception&) {
        text_.reset();
      }
    });
  } catch (const std::system_error&) {
    return;  // no thread to be had (a container's pids limit): take() builds the text
  }
  forward_stop_.emplace(stop, [this] { thread_.request_stop(); });
}

std::string TableTensorsAhead::take(const ArenaLayout& layout) {
  forward_stop_.reset();
  if (thread_.joinable()) thread_.join();
  if (text_ && offsets_ == layout.offsets) return std::move(*text_);
  return table_tensors_text(index_, layout.offsets, false);
}

}  // namespace tensorinit::stage
