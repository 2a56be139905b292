#include "io/http_fetch.hpp"

#include <fmt/format.h>

#include "io/http_retry.hpp"
#include "util/redact.hpp"

namespace tensorinit::io {
namespace {

class WholeTarget final : public BodyTarget {
 public:
  explicit WholeTarget(uint64_t max_bytes) : max_(max_bytes) {}

  Status accept(const ResponseHead& head) override {
    if (head.status != 200 && head.status != 204)
      return fail(Code::unavailable, fmt::format("unexpected HTTP {} to a GET", head.status));
    if (head.content_length && *head.content_length > max_) return too_large(*head.content_length);
    return {};
  }
  Status write(std::span<const std::byte> piece) override {
    if (piece.size() > max_ - body.size()) return too_large(body.size() + piece.size());
    body.append(reinterpret_cast<const char*>(piece.data()), piece.size());
    return {};
  }

  std::string body;

 private:
  Status too_large(uint64_t bytes) const {
    return fail(Code::bad_data, fmt::format("{} bytes or more, over the {} bytes allowed", bytes, max_));
  }
  uint64_t max_;
};

}  // namespace

Result<FetchedObject> fetch_all(HttpClient& client, const HttpRequest& request, const RequestSigner* signer,
                                const RemoteOptions& options, uint64_t max_bytes, std::stop_token stop) {
  Retrier retry(options, stop, redact_url(request.url), "GET");
  for (;;) {
    WholeTarget target(max_bytes);
    const auto limits = TransferLimits::for_request(options.stall_timeout, max_bytes);
    Exchange ex = client.send(request, {}, signer, target, limits, stop);
    if (ex.completed() && (ex.head.status == 200 || ex.head.status == 204))
      return FetchedObject{std::move(target.body), ex.head.etag};
    if (auto ok = retry.after(ex); !ok) return std::unexpected(ok.error());
  }
}

}  // namespace tensorinit::io
