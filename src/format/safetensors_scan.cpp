#include "format/safetensors_scan.hpp"

#include <cstring>

#include "util/name_table.hpp"

namespace tensorinit::format {
namespace {

// A cursor over the header text; every method returns false (or nullopt) for anything outside the
// subset, and the scan gives up.
class Scanner {
 public:
  explicit Scanner(std::string_view text) : p_(text.data()), end_(text.data() + text.size()) {}

  void skip_ws() {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
  }
  bool at_end() {
    skip_ws();
    return p_ == end_;
  }
  bool eat(char c) {
    skip_ws();
    if (p_ == end_ || *p_ != c) return false;
    ++p_;
    return true;
  }
  // A string without escapes or control characters (JSON requires those escaped): its bytes.
  // UTF-8 validity is the caller's check, done on the whole text before the scan.
  std::optional<std::string_view> string() {
    if (!eat('"')) return std::nullopt;
    const char* start = p_;
    const void* quote = std::memchr(p_, '"', static_cast<size_t>(end_ - p_));
    if (!quote) return std::nullopt;
    const char* stop = static_cast<const char*>(quote);
    for (const char* c = start; c < stop; ++c)
      if (*c == '\\' || static_cast<unsigned char>(*c) < 0x20) return std::nullopt;
    p_ = stop + 1;
    return std::string_view(start, static_cast<size_t>(stop - start));
  }
  // A JSON integer >= 0 that fits 64 bits, with no fraction or exponent (those are floats to a
  // JSON parser, and "not an unsigned integer" to the reader: its message is the full path's).
  std::optional<uint64_t> unsigned_integer() {
    skip_ws();
    const char* start = p_;
    uint64_t v = 0;
    while (p_ < end_ && *p_ >= '0' && *p_ <= '9') {
      if (__builtin_mul_overflow(v, 10u, &v) || __builtin_add_overflow(v, static_cast<uint64_t>(*p_ - '0'), &v))
        return std::nullopt;
      ++p_;
    }
    if (p_ == start || (*start == '0' && p_ - start > 1)) return std::nullopt;  // none, or a leading zero
    if (p_ < end_ && (*p_ == '.' || *p_ == 'e' || *p_ == 'E')) return std::nullopt;
    return v;
  }
  // [n, n, ...] of unsigned integers, into `out` (cleared first).
  template <class Numbers>
  bool integers(Numbers& out) {
    out.clear();
    if (!eat('[')) return false;
    if (eat(']')) return true;
    do {
      auto v = unsigned_integer();
      if (!v) return false;
      out.push_back(*v);
    } while (eat(','));
    return eat(']');
  }

 private:
  const char* p_;
  const char* end_;
};

// {"key": "value", ...} with distinct keys (a handful: a linear check is enough).
bool scan_metadata(Scanner& s) {
  if (!s.eat('{')) return false;
  if (s.eat('}')) return true;
  std::vector<std::string_view> keys;
  do {
    auto key = s.string();
    if (!key || !s.eat(':') || !s.string()) return false;
    for (auto k : keys)
      if (k == *key) return false;
    keys.push_back(*key);
  } while (s.eat(','));
  return s.eat('}');
}

// {"dtype": "...", "shape": [...], "data_offsets": [b, e]}, the keys in any order, each once.
// The shape is read straight into `t` (inline up to 4 dimensions: no allocation); `numbers` is
// scratch space for the offsets.
bool scan_tensor(Scanner& s, ScannedTensor& t, std::vector<uint64_t>& numbers) {
  if (!s.eat('{')) return false;
  bool dtype = false, shape = false, offsets = false;
  do {
    auto key = s.string();
    if (!key || !s.eat(':')) return false;
    if (*key == "dtype" && !dtype) {
      auto v = s.string();
      if (!v) return false;
      t.dtype = *v;
      dtype = true;
    } else if (*key == "shape" && !shape) {
      if (!s.integers(t.shape)) return false;
      shape = true;
    } else if (*key == "data_offsets" && !offsets) {
      if (!s.integers(numbers) || numbers.size() != 2) return false;
      t.begin = numbers[0];
      t.end = numbers[1];
      offsets = true;
    } else {
      return false;  // another key, or one seen before
    }
  } while (s.eat(','));
  return s.eat('}') && dtype && shape && offsets;
}

}  // namespace

bool scan_safetensors_entries(std::string_view text, std::stop_token stop,
                              const std::function<bool(ScannedTensor&)>& take) {
  Scanner s(text);
  if (!s.eat('{')) return false;
  bool metadata = false;
  std::vector<uint64_t> numbers;
  numbers.reserve(8);
  if (!s.eat('}')) {
    size_t count = 0;
    do {
      auto key = s.string();
      if (!key || !s.eat(':')) return false;
      if (*key == "__metadata__") {
        if (metadata || !scan_metadata(s)) return false;
        metadata = true;
        continue;
      }
      if (count++ % 4096 == 0 && stop.stop_requested()) return false;
      ScannedTensor t;
      t.name = *key;
      if (!scan_tensor(s, t, numbers) || !take(t)) return false;
    } while (s.eat(','));
    if (!s.eat('}')) return false;
  }
  return s.at_end();
}

std::optional<std::vector<ScannedTensor>> scan_safetensors_header(std::string_view text, std::stop_token stop) {
  std::vector<ScannedTensor> tensors;
  tensors.reserve(text.size() / 80);  // an entry is about 80-100 bytes
  if (!scan_safetensors_entries(text, stop, [&](ScannedTensor& t) { return tensors.push_back(std::move(t)), true; }))
    return std::nullopt;
  if (first_duplicate(tensors.size(), [&](size_t i) { return tensors[i].name; })) return std::nullopt;
  return tensors;
}

}  // namespace tensorinit::format
