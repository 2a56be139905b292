// Text from weight files on its way to messages and JSON output. nlohmann's dump() throws
// (type_error 316) on invalid UTF-8, so every string a file supplies is validated at index time,
// and messages quote file bytes only through printable() / utf8_escaped(). Header-only (the fuzz
// targets compile only the readers' sources).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <fmt/format.h>
#include <optional>
#include <string>
#include <string_view>

namespace tensorinit::format {

// The offset of the first byte that is not part of well-formed UTF-8 (RFC 3629: no overlong
// forms, no surrogates, nothing above U+10FFFF), or nullopt when all of `text` is. Thread-safe.
inline std::optional<size_t> invalid_utf8_at(std::string_view text);

// `text` with every byte outside well-formed UTF-8 written as \xNN (and '\' itself left as is):
// safe to put into a message that may end up in JSON. Thread-safe.
inline std::string utf8_escaped(std::string_view text);

// A name for a one-line message: 'name' when it is valid UTF-8 without control characters,
// else escaped and double-quoted ("a\nb", "a\xff"). Thread-safe.
inline std::string printable(std::string_view name);

namespace text_detail {

// The length of the well-formed UTF-8 sequence at the start of `s`, or 0 if there is none.
inline size_t sequence_length(std::string_view s) {
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char c = byte(0);
  if (c < 0x80) return 1;
  size_t len = 0;
  unsigned char lo = 0x80, hi = 0xbf;  // the allowed range of the second byte
  if (c >= 0xc2 && c <= 0xdf) len = 2;
  else if (c == 0xe0) len = 3, lo = 0xa0;                  // no overlong 3-byte forms
  else if (c == 0xed) len = 3, hi = 0x9f;                  // no surrogates (U+D800..U+DFFF)
  else if (c >= 0xe1 && c <= 0xef) len = 3;
  else if (c == 0xf0) len = 4, lo = 0x90;                  // no overlong 4-byte forms
  else if (c == 0xf4) len = 4, hi = 0x8f;                  // nothing above U+10FFFF
  else if (c >= 0xf1 && c <= 0xf3) len = 4;
  else return 0;                                           // 0x80..0xc1, 0xf5..0xff
  if (s.size() < len || byte(1) < lo || byte(1) > hi) return 0;
  for (size_t i = 2; i < len; ++i)
    if (byte(i) < 0x80 || byte(i) > 0xbf) return 0;
  return len;
}

}  // namespace text_detail

inline std::optional<size_t> invalid_utf8_at(std::string_view text) {
  for (size_t at = 0; at < text.size();) {
    // ASCII eight bytes at a time: the 49 MB header of 500,000 tensors took 30 ms byte by byte,
    // 6 ms so (measured here).
    uint64_t word;
    if (text.size() - at >= 8 && (std::memcpy(&word, text.data() + at, 8), (word & 0x8080808080808080ull) == 0)) {
      at += 8;
      continue;
    }
    const size_t len = text_detail::sequence_length(text.substr(at));
    if (len == 0) return at;
    at += len;
  }
  return std::nullopt;
}

inline std::string utf8_escaped(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t at = 0; at < text.size();) {
    const size_t len = text_detail::sequence_length(text.substr(at));
    if (len == 0) {
      out += fmt::format("\\x{:02x}", static_cast<unsigned char>(text[at]));
      ++at;
    } else {
      out.append(text.substr(at, len));
      at += len;
    }
  }
  return out;
}

inline std::string printable(std::string_view name) {
  bool plain = !invalid_utf8_at(name).has_value();
  for (unsigned char c : name)
    if (c < 0x20 || c == 0x7f) plain = false;
  if (plain) return fmt::format("'{}'", name);
  // Escaped by hand: control characters, quotes, backslashes and bytes outside UTF-8.
  std::string out = "\"";
  for (size_t at = 0; at < name.size();) {
    const size_t len = text_detail::sequence_length(name.substr(at));
    const unsigned char c = static_cast<unsigned char>(name[at]);
    if (len == 0 || c < 0x20 || c == 0x7f || c == '"' || c == '\\') {
      switch (c) {
        case '\n': out += "\\n"; break;
        case '\t': out += "\\t"; break;
        case '\r': out += "\\r"; break;
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        default: out += fmt::format("\\x{:02x}", c);
      }
      ++at;
    } else {
      out.append(name.substr(at, len));
      at += len;
    }
  }
  return out + "\"";
}

}  // namespace tensorinit::format
