// CRC-32 (zlib's: reflected 0x04C11DB7) and SHA-256, fast enough to check weights while they load.
// Both from well-kept libraries, linked statically: CRC-32 from zlib, SHA-256 from OpenSSL's
// libcrypto (it uses the CPU's SHA extensions where present). Measured per core on the shared
// 2-core dev VM (AMD EPYC, 64-256 MiB buffers): OpenSSL SHA-256 1.1-1.4 GB/s, libsodium's portable
// C 0.17 GB/s (why not libsodium here); zlib CRC-32 1.5 GB/s, so SHA-256 is the bound.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

namespace tensorinit {

// crc32(0, data) is zlib's crc32(0, data); crc32(crc32(0, a), b) == crc32(0, a + b). Thread-safe.
uint32_t crc32(uint32_t crc, std::span<const std::byte> data);

// Incremental SHA-256 (an OpenSSL EVP digest context, owned). Not thread-safe (one per stream).
class Sha256 {
 public:
  Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;
  ~Sha256();
  void update(std::span<const std::byte> data);
  std::array<uint8_t, 32> finish();  // the digest; the object is spent

 private:
  struct Context;
  std::unique_ptr<Context> context_;
};

// Lower-case hex of `bytes` (a digest), two digits a byte. Thread-safe.
std::string to_hex(std::span<const uint8_t> bytes);

}  // namespace tensorinit
