// verify_tensorizer_checksums: tensorizer's CRC-32 (zlib polynomial) and SHA-256, each over the
// record header with the stored hash values zeroed, followed by the tensor data (formats.md).
// Unencrypted files only (the reader refuses encrypted ones), so there is no crypt_info to skip.
#include <fmt/format.h>
#include <sodium.h>
#include <zlib.h>

#include <cstring>

#include "format/tensorizer.hpp"
#include "format/tensorizer_header.hpp"

namespace tensorinit::format {
namespace {

// zlib's crc32 takes a uInt length: feed large tensors in pieces.
uint32_t crc32_update(uint32_t crc, std::span<const std::byte> bytes) {
  constexpr size_t kStep = size_t{1} << 30;
  for (size_t at = 0; at < bytes.size(); at += kStep) {
    const size_t n = std::min(kStep, bytes.size() - at);
    crc = static_cast<uint32_t>(::crc32(crc, reinterpret_cast<const Bytef*>(bytes.data() + at), static_cast<uInt>(n)));
  }
  return crc;
}

std::string hex(std::string_view bytes) {
  std::string out;
  for (unsigned char c : bytes) out += fmt::format("{:02x}", c);
  return out;
}

}  // namespace

Status verify_tensorizer_checksums(const io::ByteSource& source, const TensorEntry& t,
                                   std::span<const std::byte> data) {
  const std::string& file = source.name();
  if (t.file_offset <= t.header_offset || t.file_offset - t.header_offset > 256 * 1024)
    return fail(Code::internal, fmt::format("{}: tensor {} has no tensorizer header to check", file, tensorizer_detail::printable_name(t.name)));
  std::string header(t.file_offset - t.header_offset, '\0');
  if (auto ok = source.read_at(t.header_offset, std::as_writable_bytes(std::span(header))); !ok)
    return std::unexpected(ok.error());
  tensorizer_detail::RecordHeader h;
  if (auto fault = tensorizer_detail::decode_record_header(header, h); !fault.empty())
    return fail(Code::bad_data, fmt::format("{}: tensor {}: header changed since indexing: {}", file, tensorizer_detail::printable_name(t.name), fault));
  if (t.zeros) data = {};  // a meta tensor has no data in the file: the hashes cover the header only
  if (data.size() != static_cast<uint64_t>(h.data_length))
    return fail(Code::internal, fmt::format("{}: tensor {}: {} bytes given to check, header says {}", file, tensorizer_detail::printable_name(t.name),
                                            data.size(), h.data_length));

  // Copy the stored values out, then zero them in the header as the writer did when hashing.
  std::vector<std::pair<uint8_t, std::string>> stored;
  for (const auto& hash : h.hashes) {
    stored.emplace_back(hash.type, std::string(hash.value));
    std::memset(header.data() + hash.value_offset, 0, hash.value.size());
  }
  const auto header_bytes = std::as_bytes(std::span(header));
  for (const auto& [type, value] : stored) {
    if (type == 0) {
      const uint32_t crc = crc32_update(crc32_update(0, header_bytes), data);
      uint32_t want = 0;
      std::memcpy(&want, value.data(), 4);
      if (crc != want)
        return fail(Code::bad_data, fmt::format("{}: tensor {}: CRC-32 mismatch (stored {:08x}, computed {:08x})",
                                                file, tensorizer_detail::printable_name(t.name), want, crc));
    } else if (type == 1) {
      crypto_hash_sha256_state state;
      crypto_hash_sha256_init(&state);
      crypto_hash_sha256_update(&state, reinterpret_cast<const unsigned char*>(header.data()), header.size());
      crypto_hash_sha256_update(&state, reinterpret_cast<const unsigned char*>(data.data()), data.size());
      std::string digest(crypto_hash_sha256_BYTES, '\0');
      crypto_hash_sha256_final(&state, reinterpret_cast<unsigned char*>(digest.data()));
      if (digest != value)
        return fail(Code::bad_data, fmt::format("{}: tensor {}: SHA-256 mismatch (stored {}, computed {})", file,
                                                tensorizer_detail::printable_name(t.name), hex(value), hex(digest)));
    }
  }
  return {};
}

}  // namespace tensorinit::format
