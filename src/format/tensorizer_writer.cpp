#include "format/tensorizer_writer.hpp"

#include <sodium.h>

#include <algorithm>
#include <cstring>
#include <fmt/format.h>

#include "format/dtype.hpp"
#include "format/tensorizer.hpp"

namespace tensorinit::format {
namespace {

constexpr uint64_t kIndexReserve = 256 * 1024;  // what tensorizer reserves for the index

template <class T>
void put(std::string& out, T value) {
  out.append(reinterpret_cast<const char*>(&value), sizeof(T));
}

bool opaque(std::string_view code) { return code.find('\0') != std::string_view::npos; }

// The crypt_info block (u64 length included) of an encrypted record with `macs` MACs.
std::string crypt_info(const TensorizerEncryption& e, std::span<const uint8_t> nonce, std::string_view macs) {
  std::string body;
  put<uint16_t>(body, e.derivation ? 2 : 1);
  if (e.derivation) {
    std::string kdf;
    put<uint16_t>(kdf, 1);  // key derivation chunk
    put<uint16_t>(kdf, 1);  // method: crypto_pwhash
    put<uint64_t>(kdf, e.derivation->opslimit);
    put<uint64_t>(kdf, e.derivation->memlimit);
    put<int32_t>(kdf, e.derivation->alg);
    put<uint16_t>(kdf, static_cast<uint16_t>(e.derivation->salt.size()));
    kdf += e.derivation->salt;
    put<uint64_t>(body, kdf.size());
    body += kdf;
  }
  std::string cipher;
  put<uint16_t>(cipher, 2);  // XSalsa20 in parallel chunks
  put<uint64_t>(cipher, e.chunk_size);
  cipher.append(reinterpret_cast<const char*>(nonce.data()), nonce.size());
  put<uint64_t>(cipher, macs.size() / 16);
  cipher += macs;
  put<uint64_t>(body, cipher.size());
  body += cipher;
  std::string out;
  put<uint64_t>(out, body.size());
  return out + body;
}

}  // namespace

void TensorizerWriter::put_shape(std::string& out, const Layout& r) {
  put<uint8_t>(out, static_cast<uint8_t>(r.stored_shape.size()));
  for (uint64_t d : r.stored_shape) r.long_shape ? put<uint64_t>(out, d) : put<uint32_t>(out, static_cast<uint32_t>(d));
}

namespace {

std::string empty_crypt_info() {
  std::string out;
  put<uint64_t>(out, 2);
  put<uint16_t>(out, 0);
  return out;
}

}  // namespace

std::string tensorizer_dtype_code(std::string_view dtype) {
  using namespace std::string_literals;
  static const std::pair<std::string_view, std::string> codes[] = {
      {"F16", "<f2"},   {"F32", "<f4"},   {"F64", "<f8"},   {"I8", "|i1"},  {"I16", "<i2"}, {"I32", "<i4"},
      {"I64", "<i8"},   {"U8", "|u1"},    {"BOOL", "|b1"},  {"C64", "<c8"},
      {"BF16", "<V2\0torch.bfloat16"s}, {"F8_E4M3", "|V1\0torch.float8_e4m3fn"s},
      {"F8_E5M2", "|V1\0torch.float8_e5m2"s}, {"F4", "|V1\0torch.float4_e2m1fn_x2"s},
  };
  for (const auto& [name, code] : codes)
    if (name == dtype) return code;
  return {};
}

Result<TensorizerWriter> TensorizerWriter::make(std::vector<TensorizerTensor> tensors,
                                                std::optional<TensorizerEncryption> encryption) {
  TensorizerWriter w;
  w.tensors_ = std::move(tensors);
  w.encryption_ = encryption;
  if (encryption && (!encryption->key || encryption->chunk_size < 1024 || encryption->chunk_size % 64 != 0))
    return fail(Code::usage, "tensorizer writer: encryption needs a key and a chunk size multiple of 64, at least 1024");
  uint32_t version = encryption ? 3 : 1;
  bool meta = false, versioned = false;
  std::string index;
  for (auto& t : w.tensors_) {
    Layout r;
    r.dtype_code = tensorizer_dtype_code(t.dtype);
    if (r.dtype_code.empty()) return fail(Code::usage, fmt::format("tensorizer writer: dtype {} cannot be written", t.dtype));
    if (t.shape.size() > 255) return fail(Code::usage, fmt::format("tensorizer writer: {} has over 255 dimensions", t.name));
    uint64_t bits = *dtype_bits(t.dtype);
    for (uint64_t d : t.shape)
      if (__builtin_mul_overflow(bits, d, &bits)) return fail(Code::usage, fmt::format("tensorizer writer: {} is too large", t.name));
    if (bits % 8 != 0) return fail(Code::usage, fmt::format("tensorizer writer: {} is not whole bytes", t.name));
    r.stored_shape = t.shape;
    if (t.dtype == "F4") {  // torch.float4_e2m1fn_x2: one element per byte, two F4 values each
      if (t.shape.empty() || t.shape.back() % 2 != 0)
        return fail(Code::usage, fmt::format("tensorizer writer: F4 tensor {} needs an even last dimension", t.name));
      r.stored_shape.back() /= 2;
    }
    // A dimension of 2^32 or more: u64 dimensions, data version 5, index entries tagged.
    r.long_shape = std::any_of(r.stored_shape.begin(), r.stored_shape.end(), [](uint64_t d) { return d >> 32 != 0; });
    if (r.long_shape) version = std::max(version, 5u), versioned = true;
    if (opaque(r.dtype_code)) version = std::max(version, 2u);
    meta |= t.meta;
    r.data_length = t.meta ? 0 : bits / 8;
    r.encrypted = encryption && r.data_length > 0;
    w.records_.push_back(std::move(r));
  }
  if (meta) version = std::max(version, 4u);
  // Record headers: sizes first (they fix every offset), contents when each tensor is written.
  uint64_t index_len = 0;
  for (size_t i = 0; i < w.tensors_.size(); ++i)
    index_len += (versioned ? 4 : 0) + 2 + w.tensors_[i].name.size() + 1 + 1 + w.records_[i].dtype_code.size() + 1 +
                 (w.records_[i].long_shape ? 8 : 4) * w.tensors_[i].shape.size() + 24;
  index_len = std::max(index_len, kIndexReserve);
  uint64_t at = kTensorizerFileHeader + index_len, total = 0;
  for (size_t i = 0; i < w.tensors_.size(); ++i) {
    Layout& r = w.records_[i];
    r.header_offset = at;
    const uint64_t macs = r.encrypted ? (r.data_length + encryption->chunk_size - 1) / encryption->chunk_size : 0;
    r.header_len = w.header_bytes(i, 0, {}, {}, std::string(16 * macs, '\0'), false).size();
    at += r.header_len + r.data_length;
    total += r.data_length;
  }
  w.file_size_ = at + 8;  // a zero header length ends the records
  std::string& head = w.head_;
  head = "|TZR|";
  put<uint32_t>(head, version);
  // Feature flags (version 4 and later): bit 0 encrypted, bit 1 versioned index entries.
  put<uint64_t>(head, (version >= 4 && encryption ? 1 : 0) | (versioned ? 2 : 0));
  head.append(24, '\0');
  put<uint64_t>(head, total);
  put<uint64_t>(head, 0);
  put<uint64_t>(head, w.tensors_.size());
  put<uint64_t>(head, index_len);
  for (size_t i = 0; i < w.tensors_.size(); ++i) {
    const auto& t = w.tensors_[i];
    const Layout& r = w.records_[i];
    if (versioned) put<uint32_t>(head, r.long_shape ? 5 : 1);
    put<uint16_t>(head, static_cast<uint16_t>(t.name.size()));
    head += t.name;
    put<uint8_t>(head, t.tensor_type);
    put<uint8_t>(head, static_cast<uint8_t>(r.dtype_code.size()));
    head += r.dtype_code;
    put_shape(head, r);
    put<uint64_t>(head, r.header_offset);
    put<uint64_t>(head, r.header_offset + r.header_len);
    put<uint64_t>(head, r.data_length);
  }
  head.resize(kTensorizerFileHeader + index_len, '\0');
  return w;
}

// The record header of tensor i; `sha` empty: zeros; `hashed`: as its checksums cover it (hash
// values zero, no crypt_info block).
std::string TensorizerWriter::header_bytes(size_t i, uint32_t crc, std::span<const uint8_t> sha,
                                           std::span<const uint8_t> nonce, std::string_view macs, bool hashed) const {
  const auto& t = tensors_[i];
  const Layout& r = records_[i];
  std::string body;
  put<uint16_t>(body, 0);  // module index
  put<uint8_t>(body, t.tensor_type);
  put<uint16_t>(body, static_cast<uint16_t>(t.name.size()));
  body += t.name;
  put<uint8_t>(body, static_cast<uint8_t>(r.dtype_code.size()));
  body += r.dtype_code;
  put_shape(body, r);
  put<uint16_t>(body, r.encrypted ? 1 + 34 : 1 + 6 + 34);  // encrypted records: SHA-256 only
  put<uint8_t>(body, r.encrypted ? 1 : 2);
  if (!r.encrypted) {
    put<uint8_t>(body, 0), put<uint8_t>(body, 4);
    put<uint32_t>(body, crc);
  }
  put<uint8_t>(body, 1), put<uint8_t>(body, 32);
  if (sha.size() == 32) body.append(reinterpret_cast<const char*>(sha.data()), 32);
  else body.append(32, '\0');
  if (encryption_ && !hashed) {
    static constexpr std::array<uint8_t, 24> kZeroNonce{};
    body += r.encrypted ? crypt_info(*encryption_, nonce.size() == 24 ? nonce : kZeroNonce, macs) : empty_crypt_info();
  }
  put<int64_t>(body, static_cast<int64_t>(r.data_length));
  std::string out;
  put<uint64_t>(out, hashed ? r.header_len : 8 + body.size());  // hashed: still the real header's length
  return out + body;
}

TensorizerWriter::Record::Record(const TensorizerWriter& writer, size_t index) : writer_(&writer), index_(index) {
  const Layout& r = writer.records_[index];
  if (r.encrypted) {
    ::randombytes_buf(nonce_.data(), nonce_.size());
    macs_.assign(16 * ((r.data_length + writer.encryption_->chunk_size - 1) / writer.encryption_->chunk_size), '\0');
  }
  const std::string header = writer.header_bytes(index, 0, {}, {}, {}, true);
  const auto bytes = std::as_bytes(std::span(header));
  crc_ = crc32(0, bytes);
  sha_.update(bytes);
}

void TensorizerWriter::Record::add(std::span<std::byte> data) {
  const Layout& r = writer_->records_[index_];
  if (!r.encrypted) crc_ = crc32(crc_, data);
  sha_.update(data);
  if (r.encrypted) {
    const uint64_t chunk = writer_->encryption_->chunk_size;
    for (uint64_t done = 0; done < data.size(); done += chunk) {
      const uint64_t k = (added_ + done) / chunk;
      const auto nonce = tensorizer_chunk_nonce(nonce_, k);
      auto* p = reinterpret_cast<unsigned char*>(data.data() + done);
      const uint64_t len = std::min<uint64_t>(chunk, data.size() - done);
      ::crypto_secretbox_detached(p, reinterpret_cast<unsigned char*>(macs_.data() + 16 * k), p, len, nonce.data(),
                                  writer_->encryption_->key->bytes());
    }
  }
  added_ += data.size();
}

std::string TensorizerWriter::Record::header() {
  const auto sha = sha_.finish();
  return writer_->header_bytes(index_, crc_, sha, nonce_, macs_, false);
}

Result<std::string> write_tensorizer_bytes(const std::vector<TensorizerTensor>& tensors,
                                           const std::vector<std::string>& data,
                                           std::optional<TensorizerEncryption> encryption) {
  auto w = TensorizerWriter::make(tensors, encryption);
  if (!w) return std::unexpected(w.error());
  std::string out(w->file_size(), '\0');
  std::memcpy(out.data(), w->head().data(), w->head().size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    const uint64_t n = w->data_bytes(i);
    if (n > 0 && data.at(i).size() != n)
      return fail(Code::usage, fmt::format("tensorizer writer: {} needs {} bytes, {} given", tensors[i].name, n,
                                           data.at(i).size()));
    auto record = w->record(i);
    std::string bytes = n > 0 ? data[i] : std::string();
    record.add(std::as_writable_bytes(std::span(bytes)));
    const std::string header = record.header();
    std::memcpy(out.data() + w->header_offset(i), header.data(), header.size());
    std::memcpy(out.data() + w->data_offset(i), bytes.data(), bytes.size());
  }
  return out;
}

}  // namespace tensorinit::format
