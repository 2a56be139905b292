#include "io/http_source.hpp"

#include <charconv>
#include <cstring>
#include <fmt/format.h>

#include "io/http_retry.hpp"
#include "util/redact.hpp"

namespace tensorinit::io {
namespace {

std::optional<uint64_t> parse_number(std::string_view text) {
  uint64_t n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return n;
}

bool weak(std::string_view etag) { return etag.starts_with("W/"); }

// The version an answer must come from: the one seen at open().
struct Pin {
  uint64_t size;
  const std::string& etag;
  const std::string& last_modified;

  // Empty when `head` is from the pinned version, else why not.
  std::string mismatch(const ResponseHead& head, std::optional<uint64_t> total) const {
    if (total && *total != size) return fmt::format("its size was {} bytes, now {}", size, *total);
    if (!etag.empty() && !head.etag.empty() && head.etag != etag)
      return fmt::format("its ETag was {}, now {}", etag, head.etag);
    if (etag.empty() && !last_modified.empty() && !head.last_modified.empty() && head.last_modified != last_modified)
      return fmt::format("it was last modified {}, now {}", last_modified, head.last_modified);
    return {};
  }
};

Error changed(std::string why) {
  return Error{Code::bad_data, "the object changed during the load (" + why + ")"};
}

// The answer to open()'s `Range: bytes=0-0`: must be a 206 that gives the total size (or, for an
// empty object, a 200 of no bytes: some servers answer so rather than 416).
class ProbeTarget final : public BodyTarget {
 public:
  Status accept(const ResponseHead& head) override {
    if (head.status == 200 && head.content_length == 0u) return {};
    if (head.status != 206)
      return fail(Code::unavailable, fmt::format("the server ignores Range requests (HTTP {} to a ranged GET); "
                                                 "tensorinit reads remote objects in parallel ranges", head.status));
    auto range = parse_content_range(head.content_range);
    if (!range || !range->total || range->first != 0u)
      return fail(Code::unavailable, fmt::format("HTTP 206 with Content-Range \"{}\" for bytes 0-0", head.content_range));
    total = *range->total;
    return {};
  }
  Status write(std::span<const std::byte> piece) override {
    received += piece.size();
    if (received > 1) return fail(Code::unavailable, "more than the one byte asked for");
    return {};
  }
  uint64_t total = 0;
  uint64_t received = 0;
};

// The answer to one ranged read: checked against the pin before a byte lands in `out`.
class RangeTarget final : public BodyTarget {
 public:
  RangeTarget(std::span<std::byte> out, uint64_t first, const Pin& pin) : out_(out), first_(first), pin_(pin) {}

  Status accept(const ResponseHead& head) override {
    if (head.status != 206)
      return fail(Code::unavailable, fmt::format("the server answered HTTP {} (not 206) to a ranged GET", head.status));
    auto range = parse_content_range(head.content_range);
    if (!range || !range->first || !range->last)
      return fail(Code::unavailable, fmt::format("HTTP 206 with Content-Range \"{}\"", head.content_range));
    if (std::string why = pin_.mismatch(head, range->total); !why.empty()) return std::unexpected(changed(why));
    const uint64_t last = first_ + out_.size() - 1;
    if (*range->first != first_ || *range->last < first_ || *range->last > last)
      return fail(Code::unavailable, fmt::format("HTTP 206 with bytes {}-{} for bytes {}-{}", *range->first,
                                                 *range->last, first_, last));
    limit_ = *range->last - first_ + 1;  // a server may send less than asked; the caller asks again
    return {};
  }

  Status write(std::span<const std::byte> piece) override {
    if (piece.size() > limit_ - written_)
      return fail(Code::unavailable, "the server sent more bytes than its Content-Range");
    std::memcpy(out_.data() + written_, piece.data(), piece.size());
    written_ += piece.size();
    return {};
  }

  uint64_t written() const { return written_; }

 private:
  std::span<std::byte> out_;
  uint64_t first_;
  const Pin& pin_;
  uint64_t limit_ = 0;
  uint64_t written_ = 0;
};

}  // namespace

std::optional<ContentRange> parse_content_range(std::string_view value) {
  if (!value.starts_with("bytes ")) return std::nullopt;
  value.remove_prefix(6);
  const size_t slash = value.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  ContentRange range;
  const std::string_view span = value.substr(0, slash), total = value.substr(slash + 1);
  if (total != "*" && !(range.total = parse_number(total))) return std::nullopt;
  if (span == "*") return range;
  const size_t dash = span.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  range.first = parse_number(span.substr(0, dash));
  range.last = parse_number(span.substr(dash + 1));
  if (!range.first || !range.last || *range.last < *range.first) return std::nullopt;
  return range;
}

Result<std::unique_ptr<HttpSource>> HttpSource::open(std::shared_ptr<HttpClient> client, HttpRequest base,
                                                     std::shared_ptr<const RequestSigner> signer,
                                                     RemoteOptions options, std::stop_token stop) {
  std::unique_ptr<HttpSource> source(new HttpSource());
  source->name_ = redact_url(base.url);
  Retrier retry(options, stop, source->name_, "GET bytes=0-0");
  for (;;) {
    ProbeTarget probe;
    Exchange ex = client->send(base, {{"Range", "bytes=0-0"}}, signer.get(), probe,
                               TransferLimits::for_request(options.stall_timeout, 1), stop);
    if (ex.completed() && ex.head.status == 206 && probe.received == 1) {
      source->size_ = probe.total;
    } else if (ex.completed() && ex.head.status == 200) {  // ProbeTarget took it: empty
      source->size_ = 0;
    } else if (ex.head.status == 416 && !ex.stopped) {  // an empty object has no byte 0
      auto range = parse_content_range(ex.head.content_range);
      if (!range || range->total != 0u)
        return std::unexpected(retry.error(Code::unavailable, ex));
      source->size_ = 0;
    } else {
      if (auto ok = retry.after(ex); !ok) return std::unexpected(ok.error());
      continue;
    }
    source->etag_ = ex.head.etag;
    source->last_modified_ = ex.head.last_modified;
    break;
  }
  source->client_ = std::move(client);
  source->base_ = std::move(base);
  source->signer_ = std::move(signer);
  source->options_ = std::move(options);
  source->stop_ = std::move(stop);
  return source;
}

Headers HttpSource::conditions() const {
  // If-Match compares strongly, so a weak ETag would never match: such a version is checked on
  // each answer instead (Pin::mismatch), as is Last-Modified where If-Unmodified-Since goes.
  if (!etag_.empty() && !weak(etag_)) return {{"If-Match", etag_}};
  if (etag_.empty() && !last_modified_.empty()) return {{"If-Unmodified-Since", last_modified_}};
  return {};
}

Status HttpSource::read_at(uint64_t offset, std::span<std::byte> out) const {
  if (offset > size_ || out.size() > size_ - offset)
    return fail(Code::bad_data, fmt::format("{}: object ends at {} bytes (asked for {} bytes at offset {})", name_, size_,
                                            out.size(), offset));
  if (out.empty()) return {};
  const uint64_t last = offset + out.size() - 1;
  const Pin pin{size_, etag_, last_modified_};
  Retrier retry(options_, stop_, name_, fmt::format("GET bytes={}-{}", offset, last));
  size_t received = 0;
  for (;;) {
    RangeTarget target(out.subspan(received), offset + received, pin);
    Headers transport{{"Range", fmt::format("bytes={}-{}", offset + received, last)}};
    for (auto& condition : conditions()) transport.push_back(std::move(condition));
    const auto limits = TransferLimits::for_request(options_.stall_timeout, out.size() - received);
    Exchange ex = client_->send(base_, transport, signer_.get(), target, limits, stop_);
    received += target.written();
    if (received == out.size() && !ex.refused) return {};  // every byte in, each checked against the pin
    if (ex.head.status == 412 || ex.head.status == 416) {
      const Headers pinned = conditions();
      Error e = changed(ex.head.status == 416 ? std::string("HTTP 416: it is shorter now")
                        : pinned.empty()      ? std::string("HTTP 412")
                                              : fmt::format("HTTP 412: {}: {} failed", pinned[0].first, pinned[0].second));
      return fail(e.code, fmt::format("{}: {}", name_, e.message));
    }
    if (ex.completed() && target.written() > 0) continue;  // a shorter range than asked: ask for the rest
    if (auto ok = retry.after(ex); !ok) return ok;
  }
}

}  // namespace tensorinit::io
