// Record headers for staging, and tensorizer's checksums: CRC-32 (zlib polynomial) and SHA-256,
// each over the record header with the stored hash values zeroed and the crypt_info block left
// out, followed by the tensor data (decrypted: encrypted records carry the SHA-256 of the
// plaintext only). As tensorizer's _TensorHeaderDeserializer and _verify_hashes compute them.
#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "format/tensorizer.hpp"
#include "format/tensorizer_header.hpp"

namespace tensorinit::format {
namespace {

using tensorizer_detail::printable_name;

// Version 3, or version 4 or 5 with flag bit 0: every record header holds crypt_info.
Result<bool> headers_carry_crypt_info(const io::ByteSource& source) {
  char header[kTensorizerFileHeader];
  if (auto ok = source.read_at(0, std::as_writable_bytes(std::span(header))); !ok) return std::unexpected(ok.error());
  uint32_t version = 0;
  uint64_t flags = 0;
  std::memcpy(&version, header + 5, 4);
  std::memcpy(&flags, header + 9, 8);
  return version == 3 || (version >= 4 && (flags & 1));
}

// A record header's dimensions are u64 when a stored dimension needs it (read_tensorizer refuses
// every other long tensor); float4_e2m1fn_x2 stores half of the table's last dimension.
bool long_shape(const TensorEntry& t) {
  for (size_t i = 0; i < t.shape.size(); ++i) {
    const uint64_t stored = i + 1 == t.shape.size() && t.dtype == "F4" ? t.shape[i] / 2 : t.shape[i];
    if (stored >= tensorizer_detail::kLongDimension) return true;
  }
  return false;
}

Result<TensorizerRecord> read_record(const io::ByteSource& source, const TensorEntry& t, bool crypt_info) {
  const std::string& file = source.name();
  if (t.file_offset <= t.header_offset)
    return fail(Code::internal, fmt::format("{}: tensor {} has no tensorizer header", file, printable_name(t.name)));
  std::string header(t.file_offset - t.header_offset, '\0');  // bounded by read_tensorizer
  if (auto ok = source.read_at(t.header_offset, std::as_writable_bytes(std::span(header))); !ok)
    return std::unexpected(ok.error());
  tensorizer_detail::RecordHeader h;
  if (auto fault = tensorizer_detail::decode_record_header(header, h, crypt_info, long_shape(t)); !fault.empty())
    return fail(Code::bad_data, fmt::format("{}: tensor {}: header changed since indexing: {}", file,
                                            printable_name(t.name), fault));
  const uint64_t stored_length = t.zeros ? 0 : t.bytes;
  if (h.data_length < 0 || static_cast<uint64_t>(h.data_length) != stored_length)
    return fail(Code::bad_data, fmt::format("{}: tensor {}: header changed since indexing (data length {})", file,
                                            printable_name(t.name), h.data_length));
  TensorizerRecord record;
  for (const auto& hash : h.hashes) {
    if (hash.type == 0 && !record.crc32) record.crc32 = [&] { uint32_t v; std::memcpy(&v, hash.value.data(), 4); return v; }();
    if (hash.type == 1 && !record.sha256) {
      record.sha256.emplace();
      std::memcpy(record.sha256->data(), hash.value.data(), 32);
    }
  }
  if (h.crypt.encrypted && !t.zeros) {
    TensorizerCipher cipher;
    cipher.chunk_size = h.crypt.whole || h.crypt.macs.size() == tensorizer_detail::kMacBytes ? std::max<uint64_t>(1, t.bytes)
                                                                                             : h.crypt.chunk_size;
    std::memcpy(cipher.nonce.data(), h.crypt.nonce.data(), cipher.nonce.size());
    cipher.macs = std::string(h.crypt.macs);
    if (h.crypt.derived)
      cipher.derivation = KeyDerivation{h.crypt.opslimit, h.crypt.memlimit, h.crypt.alg, std::string(h.crypt.salt)};
    if (t.bytes > 0 && cipher.chunks() != (t.bytes + cipher.chunk_size - 1) / cipher.chunk_size)
      return fail(Code::bad_data, fmt::format("{}: tensor {}: header changed since indexing (encryption chunks)", file,
                                              printable_name(t.name)));
    record.cipher = std::move(cipher);
  }
  // Hashed as written: hash values zeroed, crypt_info (which holds the MACs) left out.
  for (const auto& hash : h.hashes) std::memset(header.data() + hash.value_offset, 0, hash.value.size());
  if (h.has_crypt_info) header.erase(h.crypt.begin, h.crypt.end - h.crypt.begin);
  record.hashed_header = std::move(header);
  return record;
}

}  // namespace

Result<std::vector<TensorizerRecord>> read_tensorizer_records(const io::ByteSource& source,
                                                              std::span<const TensorEntry* const> tensors) {
  auto crypt_info = headers_carry_crypt_info(source);
  if (!crypt_info) return std::unexpected(crypt_info.error());
  std::vector<TensorizerRecord> records;
  records.reserve(tensors.size());
  for (const TensorEntry* t : tensors) {
    auto record = read_record(source, *t, *crypt_info);
    if (!record) return std::unexpected(record.error());
    records.push_back(std::move(*record));
  }
  return records;
}

TensorizerChecksums::TensorizerChecksums(const TensorizerRecord& record) : record_(&record) {
  update(std::as_bytes(std::span(record.hashed_header)));
}

void TensorizerChecksums::update(std::span<const std::byte> data) {
  // Both hashes per 128 KiB block, so the second reads what the first left in the L2 cache.
  constexpr size_t kBlock = 128 * 1024;
  for (size_t at = 0; at < data.size(); at += kBlock) {
    const auto block = data.subspan(at, std::min(kBlock, data.size() - at));
    if (record_->crc32) crc_ = crc32(crc_, block);
    if (record_->sha256) sha_.update(block);
  }
}

Status TensorizerChecksums::finish(std::string_view file, std::string_view tensor) {
  if (record_->crc32 && crc_ != *record_->crc32)
    return fail(Code::bad_data, fmt::format("{}: tensor {}: CRC-32 mismatch (stored {:08x}, computed {:08x})", file,
                                            printable_name(tensor), *record_->crc32, crc_));
  if (record_->sha256) {
    const auto digest = sha_.finish();
    if (digest != *record_->sha256)
      return fail(Code::bad_data, fmt::format("{}: tensor {}: SHA-256 mismatch (stored {}, computed {})", file,
                                              printable_name(tensor), to_hex(*record_->sha256), to_hex(digest)));
  }
  return {};
}

Status verify_tensorizer_checksums(const io::ByteSource& source, const TensorEntry& t,
                                   std::span<const std::byte> data) {
  const TensorEntry* one[] = {&t};
  auto records = read_tensorizer_records(source, one);
  if (!records) return std::unexpected(records.error());
  if (t.zeros) data = {};  // a meta tensor has no data in the file: the hashes cover the header only
  if (data.size() != (t.zeros ? 0 : t.bytes))
    return fail(Code::internal, fmt::format("{}: tensor {}: {} bytes given to check, the index says {}", source.name(),
                                            printable_name(t.name), data.size(), t.bytes));
  TensorizerChecksums check(records->front());
  check.update(data);
  return check.finish(source.name(), t.name);
}

}  // namespace tensorinit::format
