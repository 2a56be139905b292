#include "format/tensorizer_crypt.hpp"

#include <sodium.h>

#include <cctype>
#include <fmt/format.h>

namespace tensorinit::format {
namespace {

// Limits on a file's key derivation request: tensorizer's presets go up to SENSITIVE (1 GiB, 4
// passes); a file asking for more is refused rather than allowed to exhaust memory or time.
constexpr uint64_t kMaxDerivationMemory = 4ull << 30;
constexpr uint64_t kMaxDerivationPasses = 64;

// libsodium picks its fastest Salsa20 and Poly1305 code in sodium_init (the portable code
// otherwise). Thread-safe and idempotent.
Status ensure_sodium() {
  static const bool ready = ::sodium_init() >= 0;
  if (!ready) return fail(Code::internal, "libsodium could not be initialized");
  return {};
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

bool decode_hex(std::string_view text, std::array<unsigned char, 32>& out) {
  if (text.size() != 64) return false;
  size_t len = 0;
  return ::sodium_hex2bin(out.data(), out.size(), text.data(), text.size(), nullptr, &len, nullptr) == 0 && len == 32;
}

bool decode_base64(std::string_view text, std::array<unsigned char, 32>& out) {
  for (int variant : {sodium_base64_VARIANT_ORIGINAL, sodium_base64_VARIANT_ORIGINAL_NO_PADDING,
                      sodium_base64_VARIANT_URLSAFE, sodium_base64_VARIANT_URLSAFE_NO_PADDING}) {
    size_t len = 0;
    const char* end = nullptr;
    if (::sodium_base642bin(out.data(), out.size(), text.data(), text.size(), nullptr, &len, &end, variant) == 0 &&
        len == 32 && end == text.data() + text.size())
      return true;
  }
  return false;
}

}  // namespace

Result<TensorizerKey> TensorizerKey::parse(const Secret& text) {
  if (auto ok = ensure_sodium(); !ok) return std::unexpected(ok.error());
  const std::string_view key_text = trim(text.reveal());
  TensorizerKey key;
  if (decode_hex(key_text, key.key_) || decode_base64(key_text, key.key_)) return key;
  return fail(Code::bad_manifest, fmt::format("model.key is not a 32-byte key in hex (64 digits) or base64 "
                                              "({} characters given)", key_text.size()));
}

Result<TensorizerKey> TensorizerKey::derive(const Secret& passphrase, const KeyDerivation& how) {
  if (auto ok = ensure_sodium(); !ok) return std::unexpected(ok.error());
  if (how.alg != crypto_pwhash_ALG_ARGON2ID13)
    return fail(Code::bad_data, fmt::format("key derivation algorithm {} is not Argon2id (the only one tensorizer writes)",
                                            how.alg));
  if (how.salt.size() != crypto_pwhash_SALTBYTES)
    return fail(Code::bad_data, fmt::format("key derivation salt of {} bytes (Argon2id takes {})", how.salt.size(),
                                            crypto_pwhash_SALTBYTES));
  if (how.opslimit < crypto_pwhash_OPSLIMIT_MIN || how.opslimit > kMaxDerivationPasses ||
      how.memlimit < crypto_pwhash_MEMLIMIT_MIN || how.memlimit > kMaxDerivationMemory)
    return fail(Code::bad_data, fmt::format("key derivation asks for {} passes over {} bytes (allowed: {} to {} passes, "
                                            "{} bytes to 4 GiB)", how.opslimit, how.memlimit, crypto_pwhash_OPSLIMIT_MIN,
                                            kMaxDerivationPasses, crypto_pwhash_MEMLIMIT_MIN));
  const std::string& text = passphrase.reveal();
  if (text.empty()) return fail(Code::bad_manifest, "model.passphrase is empty");
  TensorizerKey key;
  if (::crypto_pwhash(key.key_.data(), key.key_.size(), text.data(), text.size(),
                      reinterpret_cast<const unsigned char*>(how.salt.data()), how.opslimit,
                      static_cast<size_t>(how.memlimit), how.alg) != 0)
    return fail(Code::io, fmt::format("key derivation from model.passphrase failed (out of memory? it needs {} bytes)",
                                      how.memlimit));
  return key;
}

TensorizerKey::TensorizerKey(TensorizerKey&& other) noexcept : key_(other.key_) {
  ::sodium_memzero(other.key_.data(), other.key_.size());
}

TensorizerKey::~TensorizerKey() { ::sodium_memzero(key_.data(), key_.size()); }

std::array<uint8_t, 24> tensorizer_chunk_nonce(const std::array<uint8_t, 24>& first, uint64_t index) {
  std::array<uint8_t, 24> nonce = first;
  uint64_t carry = index;
  for (size_t i = 0; i < nonce.size() && carry; ++i) {
    const uint64_t sum = nonce[i] + (carry & 0xff);
    nonce[i] = static_cast<uint8_t>(sum);
    carry = (carry >> 8) + (sum >> 8);
  }
  return nonce;
}

bool open_tensorizer_chunk(const TensorizerKey& key, const TensorizerCipher& cipher, uint64_t index,
                           std::span<std::byte> data) {
  if (index >= cipher.chunks()) return false;
  const auto nonce = tensorizer_chunk_nonce(cipher.nonce, index);
  auto* bytes = reinterpret_cast<unsigned char*>(data.data());
  const auto* mac = reinterpret_cast<const unsigned char*>(cipher.macs.data() + 16 * index);
  return ::crypto_secretbox_open_detached(bytes, bytes, mac, data.size(), nonce.data(), key.bytes()) == 0;
}

}  // namespace tensorinit::format
