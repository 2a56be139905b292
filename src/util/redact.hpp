// Secrets out of messages, by construction: a URL as it may be printed, and a Secret that never
// formats its value.
#pragma once

#include <string>
#include <string_view>

namespace tensorinit {

// A URL as it may appear in a message, log or report: userinfo replaced by ***, and the query and
// fragment (pre-signed tokens, X-Amz-Signature) cut to "?...". Thread-safe (pure).
std::string redact_url(std::string_view url);

// Text as it may be quoted in a one-line message: control characters (NUL, newline, escape...) and
// DEL as \n, \t, \r or \xHH, so that user input (a path with a newline, a NUL in a YAML "\0")
// can neither split a line nor hide in it. Everything else, UTF-8 included, is kept. Thread-safe.
std::string printable(std::string_view text);

// A credential (secret key, session token, tensorizer key or passphrase). Its value is reachable
// only through reveal(), at the one place that needs it (a signer, a decrypt call); it has no
// stream or fmt formatter, so it cannot be printed by accident.
class Secret {
 public:
  Secret() = default;
  explicit Secret(std::string value) : value_(std::move(value)) {}
  bool empty() const { return value_.empty(); }
  const std::string& reveal() const { return value_; }
  friend bool operator==(const Secret&, const Secret&) = default;

 private:
  std::string value_;
};

}  // namespace tensorinit
