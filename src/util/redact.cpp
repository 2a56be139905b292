#include "util/redact.hpp"

namespace tensorinit {

std::string redact_url(std::string_view url) {
  std::string out(url.substr(0, url.find_first_of("?#")));
  if (out.size() < url.size()) out += "?...";
  size_t scheme = out.find("://");
  size_t authority = scheme == std::string::npos ? 0 : scheme + 3;
  size_t authority_end = out.find('/', authority);
  size_t at = out.rfind('@', authority_end == std::string::npos ? out.size() : authority_end);
  if (at != std::string::npos && at >= authority) out.replace(authority, at - authority, "***");
  return out;
}

}  // namespace tensorinit
