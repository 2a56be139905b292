// Tensorizer's encryption (data version 3+, formats.md): each tensor's data is XSalsa20-Poly1305
// (libsodium secretbox, detached MACs) in chunks of chunk_size bytes, chunk i under the stored
// nonce incremented i times (little-endian), each chunk with its own MAC; so chunks decrypt
// independently, in parallel. The key is given (model.key) or derived from a passphrase
// (model.passphrase) with Argon2id, its parameters and salt stored in every encrypted header.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "util/error.hpp"
#include "util/redact.hpp"

namespace tensorinit::format {

// Argon2id parameters as tensorizer's EncryptionParams.from_string stores them.
struct KeyDerivation {
  uint64_t opslimit = 0;
  uint64_t memlimit = 0;
  int32_t alg = 0;
  std::string salt;
  friend bool operator==(const KeyDerivation&, const KeyDerivation&) = default;
};

// How one tensor's data is encrypted.
struct TensorizerCipher {
  uint64_t chunk_size = 0;                 // bytes per MAC; the data length when one MAC covers all
  std::array<uint8_t, 24> nonce{};         // for chunk 0
  std::string macs;                        // 16 bytes per chunk
  std::optional<KeyDerivation> derivation; // present when the key came from a passphrase

  uint64_t chunks() const { return macs.size() / 16; }
};

// A 32-byte secretbox key. Never printed; wiped when destroyed. Move-only.
class TensorizerKey {
 public:
  // model.key: 64 hex digits, or base64 (standard or URL-safe alphabet, padded or not) of 32
  // bytes; surrounding whitespace ignored. Errors (Code::bad_manifest) never quote the text.
  static Result<TensorizerKey> parse(const Secret& text);
  // model.passphrase through Argon2id (crypto_pwhash) with the file's parameters. Refuses
  // parameters tensorizer never writes or that would take unbounded memory or time (over 4 GiB,
  // over 64 passes): Code::bad_data. Takes about a second at tensorizer's default (MODERATE).
  static Result<TensorizerKey> derive(const Secret& passphrase, const KeyDerivation& how);

  TensorizerKey(TensorizerKey&& other) noexcept;
  TensorizerKey& operator=(TensorizerKey&&) = delete;
  TensorizerKey(const TensorizerKey&) = delete;
  ~TensorizerKey();

  const unsigned char* bytes() const { return key_.data(); }

 private:
  TensorizerKey() = default;
  std::array<unsigned char, 32> key_{};
};

// Decrypts chunk `index` of a tensor in place and checks its MAC. False when the MAC does not
// match (wrong key, or altered data); `data` is then unspecified. Thread-safe.
bool open_tensorizer_chunk(const TensorizerKey& key, const TensorizerCipher& cipher, uint64_t index,
                           std::span<std::byte> data);

// The nonce of chunk `index`: the stored nonce plus index, little-endian (sodium_increment).
std::array<uint8_t, 24> tensorizer_chunk_nonce(const std::array<uint8_t, 24>& first, uint64_t index);

}  // namespace tensorinit::format
