// What the remote-read tests share: object contents, fast retry settings, a signer with a fake
// secret, and short ways to open and read.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <set>
#include <string>

#include "../format/test_files.hpp"
#include "http_test_servers.hpp"
#include "io/http_client.hpp"
#include "io/http_source.hpp"

namespace tensorinit::testing {

using namespace std::chrono_literals;

// Position-dependent bytes from a seed, so a read from the wrong offset or object cannot pass.
inline std::string http_pattern(size_t n, uint32_t seed = 2463534242u) {
  std::string s(n, '\0');
  uint32_t x = seed;
  for (auto& c : s) {
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    c = static_cast<char>(x >> 7);
  }
  return s;
}

// Retries that cost milliseconds, so fault tests stay fast.
inline io::RemoteOptions fast_retries() {
  io::RemoteOptions o;
  o.retries = 4;
  o.backoff_base = 5ms;
  o.backoff_max = 40ms;
  o.stall_timeout = 2000ms;  // tests of stalls set less; this much keeps a loaded CI from false stalls
  o.connect_timeout = 2000ms;
  return o;
}

// Adds a bearer token and a session-token header: stands in for the SigV4 signer.
class TokenSigner final : public io::RequestSigner {
 public:
  explicit TokenSigner(std::string token) : token_(std::move(token)) {}
  Status sign(io::HttpRequest& request) const override {
    calls.fetch_add(1);
    request.headers.emplace_back("Authorization", "Bearer " + token_);
    request.headers.emplace_back("X-Amz-Security-Token", token_);
    return {};
  }
  mutable std::atomic<int> calls{0};

 private:
  std::string token_;
};

inline std::shared_ptr<io::HttpClient> make_client(const io::RemoteOptions& options = fast_retries()) {
  auto client = io::HttpClient::create(options);
  if (!client) throw std::runtime_error(client.error().message);
  return *client;
}

inline Result<std::unique_ptr<io::HttpSource>> open_url(const std::shared_ptr<io::HttpClient>& client,
                                                        const std::string& url,
                                                        const io::RemoteOptions& options = fast_retries(),
                                                        std::shared_ptr<const io::RequestSigner> signer = nullptr,
                                                        std::stop_token stop = {}) {
  return io::HttpSource::open(client, io::HttpRequest{"GET", url, {}}, std::move(signer), options, std::move(stop));
}

inline Result<std::string> read_range(const io::ByteSource& source, uint64_t offset, size_t length) {
  std::string out(length, '\0');
  if (auto ok = source.read_at(offset, std::as_writable_bytes(std::span(out))); !ok) return std::unexpected(ok.error());
  return out;
}

// The requests the server logged for `path`.
inline std::vector<nlohmann::json> requests_for(FaultServer& server, const std::string& path) {
  std::vector<nlohmann::json> out;
  for (auto& entry : server.log())
    if (entry["path"] == path) out.push_back(entry);
  return out;
}

inline size_t distinct_connections(const std::vector<nlohmann::json>& requests) {
  std::set<int> conns;
  for (auto& r : requests) conns.insert(r["conn"].get<int>());
  return conns.size();
}

}  // namespace tensorinit::testing
