#include "format/tensorizer.hpp"

#include <algorithm>
#include <array>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <set>
#include <span>
#include <utility>

#include "format/dtype.hpp"
#include "format/tensorizer_header.hpp"
#include "format/text.hpp"

namespace tensorinit::format {
namespace {

using tensorizer_detail::FieldReader;
using tensorizer_detail::RecordHeader;
using tensorizer_detail::printable_name;

constexpr std::string_view kMagic = "|TZR|";
constexpr uint64_t kEncryptedFlag = 1;          // data version 4 and later
constexpr uint64_t kVersionedHeadersFlag = 2;   // data version 5 and later: index entries carry a u32 version
constexpr uint32_t kMaxVersion = 5;
// The largest unencrypted per-tensor header: u16 name, u8 dtype, 255 dims, u16 hash section
// (about 132 KiB). Anything larger is a lie that would otherwise make us allocate it.
constexpr uint64_t kMaxRecordHeader = 256 * 1024;

// An encrypted record's header also holds a MAC (16 bytes) per encryption chunk of at least 1 KiB
// (tensorizer's minimum; it writes 2 MiB), and a key derivation chunk with a salt under 64 KiB.
uint64_t max_record_header(bool crypt_info, uint64_t data_length) {
  return crypt_info ? kMaxRecordHeader + 64 * 1024 + data_length / 64 : kMaxRecordHeader;
}

struct FileHeader {
  uint32_t version = 0;
  bool crypt_info = false;  // every record header carries a crypt_info block
  bool versioned = false;   // every index entry starts with its u32 data version (1, or 5: u64 dimensions)
};

std::unexpected<Error> malformed(std::string_view file, std::string_view what) {
  return fail(Code::bad_data, fmt::format("{}: malformed tensorizer file: {}", file, what));
}

// What the index says about one tensor, before the record is read.
struct IndexEntry {
  uint64_t position = 0;    // in the index, from 0
  bool long_shape = false;  // u64 dimensions (an entry tagged data version 5)
  std::string_view stored_name;
  uint8_t tensor_type = 0;
  std::string_view dtype;
  std::vector<uint64_t> shape;
  uint64_t header_offset = 0;
  uint64_t data_offset = 0;
  uint64_t data_length = 0;
};

Result<std::vector<IndexEntry>> parse_index(std::string_view block, uint64_t count, bool versioned,
                                            std::string_view file) {
  // The smallest entry is 29 bytes (empty name and dtype, no dims): bounds `count` before reserving.
  if (count > block.size() / 29)
    return malformed(file, fmt::format("{} tensors cannot fit a {}-byte index", count, block.size()));
  std::vector<IndexEntry> entries(count);
  FieldReader in(block);
  for (uint64_t i = 0; i < count; ++i) {
    auto& e = entries[i];
    e.position = i;
    if (versioned) {
      // tensorizer 2.12 tags entries 1 (u32 dimensions) or 5 (u64, when a dimension is 2^32 or more).
      const uint32_t tag = in.read<uint32_t>();
      if (in.ok() && tag != 1 && tag != 5)
        return malformed(file, fmt::format("index entry {} of {}: unknown entry version {}", i + 1, count, tag));
      e.long_shape = tag == 5;
    }
    e.stored_name = in.take(in.read<uint16_t>());
    e.tensor_type = in.read<uint8_t>();
    e.dtype = in.take(in.read<uint8_t>());
    const uint8_t ndim = in.read<uint8_t>();
    for (uint8_t d = 0; d < ndim && in.ok(); ++d) e.shape.push_back(e.long_shape ? in.read<uint64_t>() : in.read<uint32_t>());
    e.header_offset = in.read<uint64_t>();
    e.data_offset = in.read<uint64_t>();
    e.data_length = in.read<uint64_t>();
    if (!in.ok()) return malformed(file, fmt::format("index entry {} of {} runs past the index block", i, count));
  }
  return entries;
}

// Element count x dtype size, or nullopt on overflow / not whole bytes.
std::optional<uint64_t> byte_size(std::span<const uint64_t> shape, uint32_t bits) {
  uint64_t total = bits;
  for (uint64_t d : shape)
    if (__builtin_mul_overflow(total, d, &total)) return std::nullopt;
  if (total % 8 != 0) return std::nullopt;
  return total / 8;
}

// A dtype code we cannot put in the table, named for a message: the torch name where the code
// carries one, else the numpy code and, for the types numpy has and safetensors lacks, their name.
std::string unsupported_dtype(std::string_view code) {
  if (auto nul = code.find('\0'); nul != std::string_view::npos)
    return fmt::format("{} (stored as {})", printable(code.substr(nul + 1)), printable(code));
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 4> known{{
      {"<c16", "complex128"}, {"<c32", "complex256"}, {"<f16", "float128"}, {"<f12", "float96"}}};
  for (auto [numpy, name] : known)
    if (numpy == code) return fmt::format("{} (numpy '{}')", name, numpy);
  return printable(code);
}

// Index entry -> TensorEntry, everything that needs no file read checked here.
Result<TensorEntry> to_tensor(const IndexEntry& e, FileHeader header, uint64_t count, uint64_t index_end,
                              std::string_view file) {
  const uint32_t version = header.version;
  // Names reach the table and the report as JSON strings (tensorizer itself decodes them as UTF-8).
  if (auto bad = invalid_utf8_at(e.stored_name))
    return malformed(file, fmt::format("tensor {} of {}: its name is not valid UTF-8 (byte {}): {}", e.position + 1,
                                       count, *bad, printable(e.stored_name)));
  TensorEntry t;
  t.name = tensorizer_state_dict_key(e.stored_name);
  const std::string shown = printable_name(t.name.empty() ? e.stored_name : std::string_view(t.name));
  if (t.name.empty()) return malformed(file, fmt::format("tensor name {} is not a valid tensor path", shown));
  if (e.tensor_type > 2) return malformed(file, fmt::format("tensor {}: unknown tensor type {}", shown, e.tensor_type));
  // Long tensors are what tensorizer writes them for: the record header's dimensions are u64
  // exactly when one of them needs it (so staging can decode a header from the shape alone).
  const bool long_dims = std::any_of(e.shape.begin(), e.shape.end(), [](uint64_t d) { return d >= tensorizer_detail::kLongDimension; });
  if (e.long_shape != long_dims)
    return malformed(file, fmt::format("tensor {}: its index entry is tagged data version 5 (64-bit dimensions) but no "
                                       "dimension reaches 2^32", shown));
  t.dtype = tensorizer_dtype(e.dtype);
  if (t.dtype.empty())
    return fail(Code::bad_data, fmt::format("{}: tensor {}: unsupported dtype {}: the tensor table uses safetensors "
                                            "dtypes, which have no equivalent", file, shown, unsupported_dtype(e.dtype)));
  t.shape.assign(e.shape.begin(), e.shape.end());
  if (t.dtype == "F4") {
    // torch.float4_e2m1fn_x2 holds two F4 values per element: safetensors writes it as F4 with
    // the last dimension doubled, and so does the table.
    if (t.shape.empty())
      return fail(Code::bad_data, fmt::format("{}: tensor {}: unsupported dtype torch.float4_e2m1fn_x2 without a "
                                              "dimension (F4 needs a last dimension to double)", file, shown));
    if (__builtin_mul_overflow(t.shape.back(), uint64_t{2}, &t.shape.back()))
      return malformed(file, fmt::format("tensor {}: byte size overflows", shown));
  }
  auto size = byte_size({t.shape.data(), t.shape.size()}, *dtype_bits(t.dtype));
  if (!size) return malformed(file, fmt::format("tensor {}: byte size overflows", shown));
  if (e.header_offset < index_end)
    return malformed(file, fmt::format("tensor {}: header offset {} lies inside the file header or index (ends at {})",
                                       shown, e.header_offset, index_end));
  if (e.data_offset <= e.header_offset ||
      e.data_offset - e.header_offset > max_record_header(header.crypt_info, e.data_length))
    return malformed(file, fmt::format("tensor {}: data offset {} is not just after its header at {}", shown,
                                       e.data_offset, e.header_offset));
  uint64_t end = 0;
  if (__builtin_add_overflow(e.data_offset, e.data_length, &end))
    return malformed(file, fmt::format("tensor {}: data length {} overflows a 64-bit offset", shown, e.data_length));
  const bool meta = e.data_length == 0 && *size != 0;
  if (meta && version < 4)
    return malformed(file, fmt::format("tensor {}: no data for {} bytes (meta tensors need data version 4, file is {})",
                                       shown, *size, version));
  if (!meta && e.data_length != *size)
    return malformed(file, fmt::format("tensor {}: shape and dtype give {} bytes but the index says {}", shown, *size,
                                       e.data_length));
  t.zeros = meta;
  t.file_offset = e.data_offset;
  t.bytes = *size;
  t.header_offset = e.header_offset;
  return t;
}

// An encrypted record's cipher must cover its data as tensorizer decrypts it: one MAC for all of
// it, or one per chunk_size bytes (chunk_size a multiple of 64, at least 1024).
std::string_view check_cipher(const tensorizer_detail::CryptInfo& c, uint64_t data_length) {
  using tensorizer_detail::kMacBytes;
  const uint64_t macs = c.macs.size() / kMacBytes;
  if (c.whole) return {};
  if (c.chunk_size < 1024 || c.chunk_size % 64 != 0) return "encryption chunk size is not a multiple of 64 of at least 1024";
  if (macs != 1 && macs != (data_length + c.chunk_size - 1) / c.chunk_size)
    return "encryption MAC count does not match the data length";
  return {};
}

// The record's own header must say what the index says.
Status check_record(const io::ByteSource& source, const IndexEntry& e, TensorEntry& t, bool crypt_info) {
  const std::string& file = source.name();
  const uint64_t header_len = e.data_offset - e.header_offset;  // bounded by max_record_header
  std::string bytes(header_len, '\0');
  if (auto ok = source.read_at(e.header_offset, std::as_writable_bytes(std::span(bytes))); !ok)
    return std::unexpected(ok.error());
  RecordHeader h;
  uint64_t stored_len = 0;
  std::memcpy(&stored_len, bytes.data(), std::min<size_t>(8, bytes.size()));
  if (bytes.size() < 8 || stored_len != header_len)
    return malformed(file, fmt::format("tensor {}: its header says {} bytes but the index places its data {} bytes on",
                                       printable_name(t.name), stored_len, header_len));
  if (auto fault = tensorizer_detail::decode_record_header(bytes, h, crypt_info, e.long_shape); !fault.empty())
    return malformed(file, fmt::format("tensor {}: header at {}: {}", printable_name(t.name), e.header_offset, fault));
  if (h.name != e.stored_name || h.dtype != e.dtype || h.shape != e.shape || h.tensor_type != e.tensor_type)
    return malformed(file, fmt::format("tensor {}: its header's name, type, dtype or shape disagree with the index",
                                       printable_name(t.name)));
  if (h.data_length < 0 || static_cast<uint64_t>(h.data_length) != e.data_length)
    return malformed(file, fmt::format("tensor {}: its header says {} data bytes but the index says {}", printable_name(t.name),
                                       h.data_length, e.data_length));
  if (h.crypt.encrypted && !t.zeros) {
    if (auto fault = check_cipher(h.crypt, e.data_length); !fault.empty())
      return malformed(file, fmt::format("tensor {}: {}", printable_name(t.name), fault));
    t.encrypted = true;
  }
  return {};
}

// Records sorted by header offset may not overlap: [header_offset, data end) each.
Status check_no_overlap(const std::vector<IndexEntry>& entries, std::vector<TensorEntry>& tensors, std::string_view file) {
  std::vector<size_t> order(tensors.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return entries[a].header_offset < entries[b].header_offset; });
  for (size_t k = 1; k < order.size(); ++k) {
    const auto& prev = entries[order[k - 1]];
    const auto& cur = entries[order[k]];
    if (cur.header_offset < prev.data_offset + prev.data_length)
      return malformed(file, fmt::format("tensor {} overlaps tensor {}", printable_name(tensors[order[k]].name),
                                         printable_name(tensors[order[k - 1]].name)));
  }
  std::set<std::string_view> names;
  for (const auto& t : tensors)
    if (!names.insert(t.name).second) return malformed(file, fmt::format("tensor {} appears twice", printable_name(t.name)));
  return {};
}

Result<FileHeader> check_file_header(std::string_view header, std::string_view file) {
  if (header.substr(0, 5) != kMagic) return malformed(file, "bad magic (not a tensorizer file)");
  uint32_t version = 0;
  std::memcpy(&version, header.data() + 5, 4);
  if (version < 1 || version > kMaxVersion)
    return fail(Code::bad_data, fmt::format("{}: unsupported tensorizer data version {} (this reader knows 1 to {})",
                                            file, version, kMaxVersion));
  std::array<uint64_t, 4> flags{};
  std::memcpy(flags.data(), header.data() + 9, 32);
  // Version 3 always carries crypt_info (its flags are zero); 4 and 5 when flag bit 0 says so.
  // Version 5 (tensorizer 2.12, a dimension of 2^32 or more) tags index entries when bit 1 says so.
  FileHeader out{.version = version};
  out.crypt_info = version == 3 || (version >= 4 && (flags[0] & kEncryptedFlag));
  out.versioned = version >= 5 && (flags[0] & kVersionedHeadersFlag);
  if (version >= 4) flags[0] &= ~kEncryptedFlag;
  if (version >= 5) flags[0] &= ~kVersionedHeadersFlag;
  if (flags[0] != 0 || flags[1] != 0 || flags[2] != 0 || flags[3] != 0)
    return malformed(file, fmt::format("unknown feature flags for data version {}", version));
  return out;
}

}  // namespace

std::string tensorizer_dtype(std::string_view code) {
  if (auto nul = code.find('\0'); nul != std::string_view::npos) {
    static constexpr std::array<std::pair<std::string_view, std::string_view>, 10> torch{{
        {"torch.bfloat16", "BF16"},          {"torch.float8_e4m3fn", "F8_E4M3"},
        {"torch.float8_e5m2", "F8_E5M2"},    {"torch.float8_e4m3fnuz", "F8_E4M3FNUZ"},
        {"torch.float8_e5m2fnuz", "F8_E5M2FNUZ"}, {"torch.float8_e8m0fnu", "F8_E8M0"},
        {"torch.uint16", "U16"},             {"torch.uint32", "U32"},
        {"torch.uint64", "U64"},             {"torch.float4_e2m1fn_x2", "F4"},
    }};
    const std::string_view void_code = code.substr(0, nul);
    const std::string_view torch_name = code.substr(nul + 1);
    for (auto [name, dtype] : torch) {
      if (name != torch_name) continue;
      // The numpy stand-in must be a void type of the same width, or the sizes would disagree
      // (float4_e2m1fn_x2: one byte holds two F4 values).
      const uint32_t bytes = std::max<uint32_t>(1, *dtype_bits(dtype) / 8);
      if (void_code != fmt::format("<V{}", bytes) && void_code != fmt::format("|V{}", bytes)) return {};
      return std::string(dtype);
    }
    return {};
  }
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 13> numpy{{
      {"<f2", "F16"}, {"<f4", "F32"}, {"<f8", "F64"}, {"|i1", "I8"},  {"<i2", "I16"},
      {"<i4", "I32"}, {"<i8", "I64"}, {"|u1", "U8"},  {"<u2", "U16"}, {"<u4", "U32"},
      {"<u8", "U64"}, {"|b1", "BOOL"}, {"<c8", "C64"},
  }};
  for (auto [name, dtype] : numpy)
    if (name == code) return std::string(dtype);
  return {};
}

std::string tensorizer_state_dict_key(std::string_view stored) {
  if (stored.empty()) return {};
  if (stored.front() != '\x1e') {
    if (stored.front() == '.') stored.remove_prefix(1);  // a root-module tensor
    if (stored.empty() || stored.find('\0') != std::string_view::npos) return {};
    return std::string(stored);
  }
  // "\x1e[...]": a JSON array of strings and non-negative integers, joined with dots.
  stored.remove_prefix(1);
  if (stored.size() < 2 || stored.front() != '[' || stored.back() != ']') return {};
  nlohmann::json path;
  try {
    path = nlohmann::json::parse(stored.begin(), stored.end());
  } catch (const nlohmann::json::exception&) {
    return {};
  }
  if (!path.is_array() || path.empty()) return {};
  std::string key;
  for (const auto& part : path) {
    if (!key.empty()) key += '.';
    if (part.is_string()) {
      const auto& s = part.get_ref<const std::string&>();
      if (s.empty() || s.find('\0') != std::string::npos) return {};
      key += s;
    } else if (part.is_number_unsigned()) {
      key += std::to_string(part.get<uint64_t>());
    } else {
      return {};
    }
  }
  return key;
}

Result<TensorizerLayout> read_tensorizer(const io::ByteSource& source) {
  const std::string& file = source.name();
  const uint64_t size = source.size();
  if (size < kTensorizerFileHeader)
    return fail(Code::no_source, fmt::format("{}: incomplete: {} bytes, too short for a tensorizer header", file, size));
  std::string header(kTensorizerFileHeader, '\0');
  if (auto ok = source.read_at(0, std::as_writable_bytes(std::span(header))); !ok) return std::unexpected(ok.error());
  auto file_header = check_file_header(header, file);
  if (!file_header) return std::unexpected(file_header.error());
  uint64_t count = 0, index_len = 0;
  std::memcpy(&count, header.data() + 57, 8);
  std::memcpy(&index_len, header.data() + 65, 8);
  if (index_len > kMaxTensorizerIndex)
    return malformed(file, fmt::format("index block length {} exceeds the 100,000,000-byte limit", index_len));
  if (kTensorizerFileHeader + index_len > size)
    return fail(Code::no_source, fmt::format("{}: incomplete: index block of {} bytes runs past the end of the {}-byte file",
                                             file, index_len, size));
  std::string block(index_len, '\0');
  if (auto ok = source.read_at(kTensorizerFileHeader, std::as_writable_bytes(std::span(block))); !ok)
    return std::unexpected(ok.error());
  auto entries = parse_index(block, count, file_header->versioned, file);
  if (!entries) return std::unexpected(entries.error());

  TensorizerLayout layout;
  layout.version = file_header->version;
  layout.crypt_info = file_header->crypt_info;
  layout.index_end = kTensorizerFileHeader + index_len;
  layout.data_end = layout.index_end;
  layout.tensors.reserve(entries->size());
  for (const auto& e : *entries) {
    auto t = to_tensor(e, *file_header, entries->size(), layout.index_end, file);
    if (!t) return std::unexpected(t.error());
    layout.data_end = std::max(layout.data_end, e.data_offset + e.data_length);
    layout.tensors.push_back(std::move(*t));
  }
  if (auto ok = check_no_overlap(*entries, layout.tensors, file); !ok) return std::unexpected(ok.error());
  if (size < layout.data_end)
    return fail(Code::no_source, fmt::format("{}: incomplete: {} bytes, but its index describes {}", file, size,
                                             layout.data_end));
  for (size_t i = 0; i < entries->size(); ++i)
    if (auto ok = check_record(source, (*entries)[i], layout.tensors[i], layout.crypt_info); !ok)
      return std::unexpected(ok.error());
  std::sort(layout.tensors.begin(), layout.tensors.end(),
            [](const TensorEntry& a, const TensorEntry& b) { return a.file_offset < b.file_offset; });
  return layout;
}

}  // namespace tensorinit::format
