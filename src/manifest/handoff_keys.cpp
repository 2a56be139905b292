#include "manifest/handoff_keys.hpp"

#include <cctype>
#include <string>
#include <string_view>

#include "manifest/words.hpp"
namespace tensorinit::manifest {
namespace {

constexpr std::string_view kReadyAllowed =
    "a map with one of http: URL, tcp: HOST:PORT, socket: true; and timeout, file; or none";

bool valid_port(std::string_view port) {
  if (port.empty() || port.size() > 5) return false;
  for (char c : port)
    if (c < '0' || c > '9') return false;
  const int n = std::stoi(std::string(port));
  return n >= 1 && n <= 65535;
}

bool valid_host(std::string_view host) {
  if (host.empty() || host.size() > 253) return false;
  for (char c : host)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == ':' || c == '_')) return false;
  return true;
}

// "HOST:PORT" or "[V6]:PORT" into host and port; false when malformed.
bool split_host_port(std::string_view text, std::string& host, std::string& port) {
  if (text.starts_with('[')) {
    const size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') return false;
    host = std::string(text.substr(1, close - 1));
    port = std::string(text.substr(close + 2));
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos || text.substr(0, colon).find(':') != std::string_view::npos) return false;
    host = std::string(text.substr(0, colon));
    port = std::string(text.substr(colon + 1));
  }
  return valid_host(host) && valid_port(port);
}

void parse_http(const Fields& f, const Field& field, Handoff& h) {
  constexpr std::string_view allowed = "http://HOST[:PORT][/PATH], e.g. http://127.0.0.1:8000/health";
  const std::string url = f.text(field, allowed);
  if (url.starts_with("https://"))
    f.fail(field, "https is not probed (a plain HTTP/1.1 GET on the pod's own network): use http:// or tcp:");
  if (!url.starts_with("http://")) f.fail(field, f.quoted(field, url) + " is not an http URL (" + std::string(allowed) + ")");
  std::string_view rest = std::string_view(url).substr(7);
  const size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  h.ready_path = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (authority.find('@') != std::string_view::npos)
    f.fail(field, "credentials in the ready URL are not sent (" + std::string(allowed) + ")");
  for (char c : h.ready_path)
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f)
      f.fail(field, "the ready URL's path holds a space or control character (" + std::string(allowed) + ")");
  const size_t fragment = h.ready_path.find('#');
  if (fragment != std::string::npos) h.ready_path.resize(fragment);
  const bool has_port = authority.starts_with('[') ? authority.find("]:") != std::string_view::npos
                                                   : authority.find(':') != std::string_view::npos;
  const std::string host_port = has_port ? std::string(authority) : std::string(authority) + ":80";
  if (!split_host_port(host_port, h.ready_host, h.ready_port))
    f.fail(field, f.quoted(field, url) + " has no valid host and port (" + std::string(allowed) + ")");
  h.ready = ReadyProbe::http;
}

void parse_ready(const Fields& f, const Field& field, Handoff& h) {
  if (field.node.IsScalar() || field.node.IsNull()) {
    if (f.optional_text(field, kReadyAllowed).empty() || f.text(field, kReadyAllowed) == "none") return;
    f.fail(field, "expected " + std::string(kReadyAllowed));
  }
  const Field* probe = nullptr;
  for (const auto& [name, value] : f.entries(field, {"http", "tcp", "socket", "timeout", "file"})) {
    if (name == "timeout") {
      h.ready_timeout = f.duration(value, "e.g. 10m, 90s (from each server start)");
      if (h.ready_timeout.count() <= 0) f.fail(value, "the timeout must be longer than 0 (e.g. 10m)");
      continue;
    }
    if (name == "file") {
      h.ready_file = f.optional_text(value, "a file path written at ready (for exec probes), or \"\" for none");
      continue;
    }
    if (probe) f.fail(value, "only one of http, tcp, socket (" + std::string(kReadyAllowed) + ")");
    probe = &value;
    if (name == "http") {
      parse_http(f, value, h);
    } else if (name == "tcp") {
      const std::string text = f.text(value, "HOST:PORT, e.g. 127.0.0.1:8000 or [::1]:8000");
      if (!split_host_port(text, h.ready_host, h.ready_port))
        f.fail(value, f.quoted(value, text) + " is not HOST:PORT (e.g. 127.0.0.1:8000 or [::1]:8000)");
      h.ready = ReadyProbe::tcp;
    } else {
      const bool on = f.word<bool>(value, {{"true", true}, {"false", false}});
      h.ready = on ? ReadyProbe::socket : ReadyProbe::none;
    }
  }
}

void parse_restart(const Fields& f, const SupervisionKeys& keys, Handoff& h) {
  if (keys.restart)
    h.restart = f.word<Restart>(*keys.restart, kRestartWords);
  if (keys.max_restarts)
    h.max_restarts = static_cast<uint32_t>(f.integer(*keys.max_restarts, 0, 1000000, "a number 0..1000000"));
  if (keys.restart_delay) {
    h.restart_delay = f.duration(*keys.restart_delay, "e.g. 1s, 200ms (the first delay; it doubles, capped)");
    if (h.restart_delay > h.restart_delay_max) h.restart_delay_max = h.restart_delay;
  }
}

}  // namespace

void parse_supervision_keys(const Fields& f, const Field& handoff_map, Handoff& h, const SupervisionKeys& keys) {
  if (keys.ready) parse_ready(f, *keys.ready, h);
  parse_restart(f, keys, h);
  if (h.mode == HandoffMode::signal) return;
  const Field* bad = h.ready != ReadyProbe::none ? keys.ready : h.restart != Restart::never ? keys.restart : nullptr;
  if (!bad) return;
  const std::string what = bad == keys.ready ? "handoff.ready" : "handoff.restart";
  const std::string why = h.mode == HandoffMode::none
                              ? "handoff.mode none starts no server"
                              : "handoff.mode exec replaces tensorinit by the server, so nothing is left to watch or restart it";
  f.fail(keys.mode ? *keys.mode : handoff_map,
         what + " needs a tensorinit that stays the server's parent: " + why +
             " (use handoff.mode: signal; with start: after-load the server starts on staged weights, as in exec)");
}

}  // namespace tensorinit::manifest
