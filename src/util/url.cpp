#include "util/url.hpp"

#include "util/redact.hpp"

namespace tensorinit {

std::string Url::redacted() const { return printable(redact_url(text_)); }

Url Url::join(std::string_view name) const {
  const size_t query = text_.find('?');
  const size_t fragment = text_.find('#');
  const size_t end = std::min(query, fragment);
  std::string out = text_.substr(0, end);
  if (out.empty() || out.back() != '/') out += '/';
  out.append(name);
  if (query < fragment) out.append(text_, query, fragment == std::string::npos ? std::string::npos : fragment - query);
  return Url(std::move(out));
}

}  // namespace tensorinit
