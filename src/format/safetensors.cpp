#include "format/safetensors.hpp"

#include <algorithm>
#include <cstring>
#include <memory>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <set>

#include "format/dtype.hpp"
#include "format/safetensors_scan.hpp"
#include "format/text.hpp"
#include "util/name_table.hpp"

namespace tensorinit::format {
namespace {

using nlohmann::json;

struct DuplicateKey {
  std::string key;
};

// nlohmann keeps the last of duplicate keys silently; safetensors readers must reject them. Found
// in a SAX pass (linear) before the DOM parse: a parse callback would do it, but nlohmann's
// callback DOM builder rescans the parent object after every child object ends, so a header of n
// tensors cost O(n^2) (measured: 40k tensors 19.8 s, with no way to stop it).
class DuplicateKeys final : public nlohmann::json_sax<json> {
 public:
  bool found = false;
  std::string duplicate;  // the first one
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override { return open_.emplace_back(), true; }
  bool key(string_t& k) override {
    if (open_.back().insert(k).second) return true;
    found = true;
    duplicate = k;
    return false;
  }
  bool end_object() override { return open_.pop_back(), true; }
  bool start_array(std::size_t) override { return true; }
  bool end_array() override { return true; }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override { return false; }

 private:
  std::vector<std::set<std::string>> open_;
};

json parse_rejecting_duplicates(std::string_view text) {
  DuplicateKeys keys;
  json::sax_parse(text.begin(), text.end(), &keys);
  if (keys.found) throw DuplicateKey{keys.duplicate};
  return json::parse(text.begin(), text.end());  // a syntax error throws here
}

std::unexpected<Error> malformed(std::string_view file, std::string_view what) {
  return fail(Code::bad_data, fmt::format("{}: malformed safetensors file: {}", file, what));
}

// The checks every tensor entry gets once its parts are read, whichever parser read them; fills
// `t` (built in place: its vector's memory is touched once).
Status fill_tensor(TensorEntry& t, std::string_view key, std::string_view dtype, Shape&& shape,
                   uint64_t begin, uint64_t end, uint64_t data_start, std::string_view file) {
  auto bits = dtype_bits(dtype);
  if (!bits)
    return fail(Code::bad_data, fmt::format("{}: tensor {}: unsupported dtype {} (not in the safetensors vocabulary "
                                            "tensorinit knows)", file, printable(key), printable(dtype)));
  const auto name = [&] { return printable(key); };  // for messages: a name may hold control characters
  uint64_t elements = 1;
  for (uint64_t d : shape)
    if (__builtin_mul_overflow(elements, d, &elements))
      return malformed(file, fmt::format("tensor {}: element count overflows", name()));
  uint64_t total_bits = 0;
  if (__builtin_mul_overflow(elements, uint64_t{*bits}, &total_bits))
    return malformed(file, fmt::format("tensor {}: byte size overflows", name()));
  if (total_bits % 8 != 0)
    return malformed(file, fmt::format("tensor {}: {} elements of {} bits are not whole bytes", name(), elements, *bits));
  if (end < begin) return malformed(file, fmt::format("tensor {}: data_offsets end before begin", name()));
  if (end - begin != total_bits / 8)
    return malformed(file, fmt::format("tensor {}: shape and dtype give {} bytes but data_offsets span {}",
                                       name(), total_bits / 8, end - begin));
  // Checking the end also bounds every later sum (file_offset + bytes, data_start + data_size).
  uint64_t file_end = 0;
  if (__builtin_add_overflow(begin, data_start, &t.file_offset) || __builtin_add_overflow(end, data_start, &file_end))
    return malformed(file, fmt::format("tensor {}: data_offsets overflow a 64-bit file offset", name()));
  t.name = key;
  t.dtype = dtype;
  t.shape = std::move(shape);
  t.bytes = end - begin;
  return {};
}

Result<TensorEntry> make_tensor(std::string_view key, std::string_view dtype, Shape&& shape,
                                uint64_t begin, uint64_t end, uint64_t data_start, std::string_view file) {
  TensorEntry t;
  if (auto ok = fill_tensor(t, key, dtype, std::move(shape), begin, end, data_start, file); !ok)
    return std::unexpected(ok.error());
  return t;
}

Result<TensorEntry> parse_tensor(const std::string& key, const json& info, uint64_t data_start,
                                 std::string_view file) {
  const std::string name = printable(key);  // for messages: a name may hold control characters
  if (!info.is_object()) return malformed(file, fmt::format("tensor {} is not an object", name));
  auto dtype = info.find("dtype");
  auto shape = info.find("shape");
  auto offsets = info.find("data_offsets");
  if (dtype == info.end() || shape == info.end() || offsets == info.end())
    return malformed(file, fmt::format("tensor {} lacks dtype, shape or data_offsets", name));
  if (!dtype->is_string()) return malformed(file, fmt::format("tensor {}: dtype is not a string", name));
  const auto& dtype_text = dtype->get_ref<const std::string&>();
  if (!dtype_bits(dtype_text)) return make_tensor(key, dtype_text, {}, 0, 0, data_start, file);  // its message
  if (!shape->is_array()) return malformed(file, fmt::format("tensor {}: shape is not an array", name));
  Shape dims;
  for (const auto& dim : *shape) {
    if (!dim.is_number_unsigned())
      return malformed(file, fmt::format("tensor {}: shape has a negative or non-integer dimension", name));
    dims.push_back(dim.get<uint64_t>());
  }
  if (!offsets->is_array() || offsets->size() != 2 || !(*offsets)[0].is_number_unsigned() ||
      !(*offsets)[1].is_number_unsigned())
    return malformed(file, fmt::format("tensor {}: data_offsets is not [begin, end]", name));
  return make_tensor(key, dtype_text, std::move(dims), (*offsets)[0].get<uint64_t>(), (*offsets)[1].get<uint64_t>(),
                     data_start, file);
}

Status check_metadata(const json& metadata, std::string_view file) {
  if (!metadata.is_object()) return malformed(file, "__metadata__ is not an object");
  for (const auto& [key, value] : metadata.items())
    if (!value.is_string()) return malformed(file, fmt::format("__metadata__ {} is not a string", printable(key)));
  return {};
}

// Sorted by offset, the tensors must tile [0, data_size) exactly: no holes, no overlap.
Status check_tiling(std::vector<TensorEntry>& tensors, uint64_t data_start, std::string_view file,
                    uint64_t& data_size) {
  const auto before = [](const TensorEntry& a, const TensorEntry& b) {
    if (a.file_offset != b.file_offset) return a.file_offset < b.file_offset;
    return a.bytes != b.bytes ? a.bytes < b.bytes : a.name < b.name;  // a total order: both parsers agree
  };
  // Writers emit offset order: checking costs one pass, sorting 500,000 entries 5% of a plan.
  if (!std::is_sorted(tensors.begin(), tensors.end(), before)) std::sort(tensors.begin(), tensors.end(), before);
  uint64_t cursor = data_start;
  for (const auto& t : tensors) {
    if (t.file_offset < cursor)
      return malformed(file, fmt::format("tensor {} overlaps the tensor before it", printable(t.name)));
    if (t.file_offset > cursor && cursor == data_start)
      return malformed(file, fmt::format("data section starts with a hole: first tensor {} begins at {}, not at 0",
                                         printable(t.name), t.file_offset - data_start));
    if (t.file_offset > cursor)
      return malformed(file, fmt::format("hole of {} bytes before tensor {}", t.file_offset - cursor, printable(t.name)));
    cursor += t.bytes;
  }
  data_size = cursor - data_start;
  return {};
}

}  // namespace

Result<SafetensorsLayout> parse_safetensors_header(std::string_view text, uint64_t data_start,
                                                   std::string_view file, std::stop_token stop) {
  const auto stopped = [&] { return fail(Code::stopped, fmt::format("{}: indexing stopped", file)); };
  if (text.empty() || text.front() != '{') return malformed(file, "header does not start with '{'");
  // nlohmann's lexer takes a NUL byte for the end of input, so "{...}\0<anything>" would pass.
  // JSON never holds a raw NUL (inside strings it must be escaped), so any NUL is malformed.
  if (auto nul = text.find('\0'); nul != std::string_view::npos)
    return malformed(file, fmt::format("header holds a NUL byte at offset {}", nul));
  // The format requires UTF-8; names and metadata reach JSON output (the table, the report).
  if (auto bad = invalid_utf8_at(text))
    return malformed(file, fmt::format("header is not valid UTF-8 (byte {} of the header, file offset {})", *bad, 8 + *bad));
  SafetensorsLayout layout;
  layout.data_start = data_start;
  // The common case, without a DOM: entries checked as they are scanned, built in place.
  layout.tensors.reserve(text.size() / 64);  // an entry is 80-100 bytes: pages past the end stay untouched
  const bool scanned = scan_safetensors_entries(text, stop, [&](ScannedTensor& t) {
    // A fault: the full parser below reports the first one in its own order.
    return fill_tensor(layout.tensors.emplace_back(), t.name, t.dtype, std::move(t.shape), t.begin, t.end, data_start,
                       file).has_value();
  });
  if (stop.stop_requested()) return stopped();
  if (scanned && !first_duplicate(layout.tensors.size(), [&](size_t i) -> std::string_view { return layout.tensors[i].name; }) &&
      check_tiling(layout.tensors, data_start, file, layout.data_size))
    return layout;
  layout.tensors.clear();
  json header;
  try {
    header = parse_rejecting_duplicates(text);
  } catch (const DuplicateKey& dup) {
    return malformed(file, fmt::format("duplicate key {} in header", printable(dup.key)));
  } catch (const json::exception& e) {
    // nlohmann quotes the bytes it last read, which may end inside a character: escaped.
    return malformed(file, fmt::format("header is not valid JSON: {}", utf8_escaped(e.what())));
  }
  if (!header.is_object()) return malformed(file, "header is not a JSON object");
  for (const auto& [name, info] : header.items()) {
    if (name == "__metadata__") {
      if (auto ok = check_metadata(info, file); !ok) return std::unexpected(ok.error());
      continue;
    }
    auto tensor = parse_tensor(name, info, data_start, file);
    if (!tensor) return std::unexpected(tensor.error());
    layout.tensors.push_back(std::move(*tensor));
  }
  if (auto ok = check_tiling(layout.tensors, data_start, file, layout.data_size); !ok)
    return std::unexpected(ok.error());
  return layout;
}

Result<SafetensorsLayout> read_safetensors(const io::ByteSource& source, std::stop_token stop) {
  const std::string& file = source.name();
  const uint64_t size = source.size();
  if (size < 8)
    return fail(Code::no_source, fmt::format("{}: incomplete: {} bytes, too short for a safetensors header", file, size));
  std::byte prefix[8];
  if (auto ok = source.read_at(0, prefix); !ok) return std::unexpected(ok.error());
  uint64_t header_len = 0;
  std::memcpy(&header_len, prefix, 8);  // little-endian on every target we build for
  if (header_len > kMaxSafetensorsHeader)
    return malformed(file, fmt::format("header length {} exceeds the 100,000,000-byte limit", header_len));
  if (8 + header_len > size)
    return fail(Code::no_source, fmt::format("{}: incomplete: header length {} runs past the end of the {}-byte file",
                                             file, header_len, size));
  // Not zeroed first: the read fills it (50 MB for 500,000 tensors). (g++ 12's
  // std::string::resize_and_overwrite sets the wrong size: not used.)
  const auto buffer = std::make_unique_for_overwrite<char[]>(header_len);
  const std::span<char> text(buffer.get(), header_len);
  if (auto ok = source.read_at(8, std::as_writable_bytes(text)); !ok) return std::unexpected(ok.error());
  // Writers pad with spaces to a multiple of 8; JSON allows trailing whitespace, so no trimming.
  auto layout = parse_safetensors_header(std::string_view(text.data(), text.size()), 8 + header_len, file, stop);
  if (!layout) return layout;
  const uint64_t expected = layout->data_start + layout->data_size;
  if (size < expected)
    return fail(Code::no_source, fmt::format("{}: incomplete: {} bytes, but its header describes {}", file, size, expected));
  if (size > expected)
    return malformed(file, fmt::format("{} trailing bytes after the last tensor", size - expected));
  return layout;
}

}  // namespace tensorinit::format
