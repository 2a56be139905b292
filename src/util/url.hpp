// A URL the user wrote (a source's url, an s3 endpoint). It may carry secrets: userinfo
// (user:password@) or a query (a token, a pre-signed X-Amz-Signature). So every conversion of it to
// text for output is redacted by construction: fmt ("{}") and nlohmann JSON print redacted(), and
// there is no other formatter. The text as written is reachable only through reveal(), where a
// request is built or the URL is parsed (curl, the signer, the s3 addressing).
#pragma once

#include <fmt/format.h>

#include <string>
#include <string_view>

namespace tensorinit {

class Url {
 public:
  Url() = default;
  Url(std::string text) : text_(std::move(text)) {}  // NOLINT: implicit, a manifest value or a literal
  Url(const char* text) : text_(text) {}             // NOLINT

  bool empty() const { return text_.empty(); }

  // For messages, logs, reports and tables: userinfo as ***, the query and fragment cut to "?...",
  // control characters escaped (redact_url, then printable). Thread-safe (const).
  std::string redacted() const;

  // The text as written, credentials included: only where a request is made or the URL is parsed.
  const std::string& reveal() const { return text_; }

  // `name` (a relative path, already encoded for the wire) under this URL taken as a prefix: appended
  // to the path after a '/' (added when the path does not end in one), the query kept after it, the
  // fragment dropped. "http://h/p?t=1".join("a.bin") is "http://h/p/a.bin?t=1".
  Url join(std::string_view name) const;
  // join(""): the URL with its path ending in '/'.
  Url as_prefix() const { return join(""); }

  friend bool operator==(const Url& a, const Url& b) { return a.text_ == b.text_; }

 private:
  std::string text_;
};

// JSON (nlohmann, found by ADL): the redacted form.
template <class Json>
void to_json(Json& json, const Url& url) {
  json = url.redacted();
}

}  // namespace tensorinit

template <>
struct fmt::formatter<tensorinit::Url> : fmt::formatter<std::string> {
  auto format(const tensorinit::Url& url, fmt::format_context& ctx) const {
    return fmt::formatter<std::string>::format(url.redacted(), ctx);
  }
};
