#include "util/checksum.hpp"

#include <openssl/evp.h>
#include <zlib.h>

#include <algorithm>
#include <climits>
#include <stdexcept>

namespace tensorinit {

uint32_t crc32(uint32_t crc, std::span<const std::byte> data) {
  uLong value = crc;
  while (!data.empty()) {  // zlib takes uInt lengths
    const size_t n = std::min<size_t>(data.size(), UINT_MAX);
    value = ::crc32(value, reinterpret_cast<const Bytef*>(data.data()), static_cast<uInt>(n));
    data = data.subspan(n);
  }
  return static_cast<uint32_t>(value);
}

struct Sha256::Context {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  ~Context() { EVP_MD_CTX_free(ctx); }
};

Sha256::Sha256() : context_(std::make_unique<Context>()) {
  // Failing here means no memory or a broken libcrypto: nothing a caller could decide on.
  if (!context_->ctx || EVP_DigestInit_ex(context_->ctx, EVP_sha256(), nullptr) != 1)
    throw std::runtime_error("SHA-256: OpenSSL digest initialisation failed");
}
Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;
Sha256::~Sha256() = default;

void Sha256::update(std::span<const std::byte> data) {
  if (!data.empty()) EVP_DigestUpdate(context_->ctx, data.data(), data.size());
}

std::array<uint8_t, 32> Sha256::finish() {
  std::array<uint8_t, 32> digest{};
  unsigned int len = 0;
  EVP_DigestFinal_ex(context_->ctx, digest.data(), &len);
  return digest;
}

std::string to_hex(std::span<const uint8_t> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (uint8_t b : bytes) {
    out += kDigits[b >> 4];
    out += kDigits[b & 15];
  }
  return out;
}

}  // namespace tensorinit
