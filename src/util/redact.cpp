#include "util/redact.hpp"

namespace tensorinit {

std::string redact_url(std::string_view url) {
  std::string out(url.substr(0, url.find_first_of("?#")));
  if (out.size() < url.size()) out += "?...";
  size_t scheme = out.find("://");
  size_t authority = scheme == std::string::npos ? 0 : scheme + 3;
  size_t authority_end = out.find('/', authority);
  size_t at = out.rfind('@', authority_end == std::string::npos ? out.size() : authority_end);
  // A password holding an unencoded '/' ends the authority early ("https://u:pa/ss@host/m"): a ':'
  // followed by anything but a port before that '/', and an '@' after it, is userinfo up to the
  // last '@' before the next '/'. (Wrong for a URL no parser accepts anyway; never leaks the password.)
  const size_t colon = out.find(':', authority);
  if (at == std::string::npos && colon < authority_end && out.find('@', authority_end) != std::string::npos &&
      out.find_first_not_of("0123456789", colon + 1) < authority_end) {
    const size_t next_slash = out.find('/', out.find('@', authority_end));
    at = out.rfind('@', next_slash == std::string::npos ? out.size() : next_slash);
  }
  if (at != std::string::npos && at >= authority) out.replace(authority, at - authority, "***");
  return out;
}

std::string printable(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte >= 0x20 && byte != 0x7f) {
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else {
      constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[byte >> 4];
      out += kHex[byte & 15];
    }
  }
  return out;
}

}  // namespace tensorinit
