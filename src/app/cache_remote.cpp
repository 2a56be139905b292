#include "app/cache_remote.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fmt/format.h>

#include "io/http_client.hpp"
#include "io/http_put.hpp"
#include "io/http_source.hpp"
#include "plan/remote_model.hpp"
#include "util/checksum.hpp"
#include "util/fd.hpp"

namespace tensorinit::app {
namespace {

// Archives are fetched in 8 MiB ranged reads, this many in flight (each its own connection).
constexpr uint32_t kPrefetch = 8;

Result<std::string> sha256_of(int fd, uint64_t size) {
  Sha256 sha;
  std::vector<std::byte> buffer(1 << 20);
  for (uint64_t at = 0; at < size;) {
    ssize_t n = ::pread(fd, buffer.data(), std::min<uint64_t>(buffer.size(), size - at), static_cast<off_t>(at));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return fail(Code::io, "the archive could not be read back");
    sha.update(std::span(buffer.data(), static_cast<size_t>(n)));
    at += static_cast<uint64_t>(n);
  }
  return to_hex(sha.finish());
}

class S3Upload final : public cache::Upload {
 public:
  S3Upload(UniqueFd fd, io::RemoteEndpoint endpoint, std::string url, io::RemoteOptions options)
      : fd_(std::move(fd)), endpoint_(std::move(endpoint)), url_(std::move(url)), options_(std::move(options)) {}
  int fd() const override { return fd_.get(); }
  Status commit(std::stop_token stop) override {
    struct stat st;
    if (::fstat(fd_.get(), &st) != 0) return fail(Code::io, std::string("the archive: ") + std::strerror(errno));
    const auto size = static_cast<uint64_t>(st.st_size);
    auto sha = sha256_of(fd_.get(), size);
    if (!sha) return std::unexpected(sha.error());
    io::HttpRequest request{.method = "PUT", .url = url_, .headers = {{"Content-Type", "application/zstd"}},
                            .payload_sha256 = *sha};
    return io::http_put(std::move(request), fd_.get(), size, endpoint_.signer.get(), options_, stop);
  }

 private:
  UniqueFd fd_;
  io::RemoteEndpoint endpoint_;
  std::string url_;
  io::RemoteOptions options_;
};

class RemoteStore final : public cache::Store {
 public:
  RemoteStore(const manifest::Source& source, const std::string& cache_name)
      : source_(source), file_(cache::archive_file_name(cache_name)),
        name_(plan::remote_file_url(source, file_)) {}

  const std::string& name() const override { return name_; }
  uint32_t prefetch() const override { return kPrefetch; }

  Result<std::shared_ptr<const io::ByteSource>> open(std::stop_token stop) const override {
    auto endpoint = plan::endpoint_for(source_);
    if (!endpoint) return std::unexpected(endpoint.error());
    const io::RemoteOptions options = plan::options_for(source_);
    auto client = io::HttpClient::create(options);
    if (!client) return std::unexpected(client.error());
    io::HttpRequest base{.url = endpoint->wire_url(file_)};
    auto opened = io::HttpSource::open(*client, base, endpoint->signer, options, stop);
    if (!opened) return std::unexpected(opened.error());
    return std::shared_ptr<const io::ByteSource>(std::move(*opened));
  }

  Result<std::unique_ptr<cache::Upload>> begin(std::stop_token) const override {
    if (!source_type_info(source_.type).cache_writable)
      return fail(Code::denied, fmt::format("{}: {} sources are read only", name_, to_string(source_.type)));
    auto endpoint = plan::endpoint_for(source_);
    if (!endpoint) return std::unexpected(endpoint.error());
    const char* tmp = std::getenv("TMPDIR");
    const std::string dir = tmp && *tmp ? tmp : "/tmp";
    UniqueFd fd(::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
    if (!fd) return fail(Code::io, fmt::format("{}: a temporary file for the archive: {}", dir, std::strerror(errno)));
    std::string url = endpoint->wire_url(file_);
    return std::unique_ptr<cache::Upload>(
        std::make_unique<S3Upload>(std::move(fd), std::move(*endpoint), std::move(url), plan::options_for(source_)));
  }

 private:
  manifest::Source source_;
  std::string file_;
  std::string name_;
};

}  // namespace

std::unique_ptr<cache::Store> remote_cache_store(const manifest::Source& source, const std::string& cache_name) {
  return std::make_unique<RemoteStore>(source, cache_name);
}

}  // namespace tensorinit::app
