#include "stage/tensorizer_reads.hpp"

#include <algorithm>
#include <chrono>
#include <fmt/format.h>

#include "format/text.hpp"
#include "util/log.hpp"
#include "util/units.hpp"

namespace tensorinit::stage {
namespace {

using format::printable;

// One read under construction, and the work items they form.
struct PlannedRead {
  Chunk chunk;
  std::vector<std::pair<Piece, uint32_t>> pieces;  // and the tensor each feeds
};
struct PlannedItem {
  std::vector<PlannedRead> reads;
  uint64_t bytes = 0;
};

}  // namespace

Result<std::unique_ptr<TensorizerReads>> TensorizerReads::prepare(const TensorChecks& checks,
                                                                  const format::ModelIndex& index,
                                                                  const ArenaLayout& layout, uint64_t chunk_size,
                                                                  std::span<const io::ByteSource* const> files,
                                                                  uint64_t memory_limit) {
  const bool verify = checks.checksums;
  if (index.format != format::Format::tensorizer) {
    if (verify && index.format == format::Format::safetensors)
      log::info("model.verify checksums: safetensors files carry no checksums; checking sizes only");
    return nullptr;
  }
  const bool encrypted = std::any_of(index.tensors.begin(), index.tensors.end(),
                                     [](const format::TensorEntry& t) { return t.encrypted && t.bytes > 0; });
  if (!verify && !encrypted) return nullptr;
  std::unique_ptr<TensorizerReads> reads(new TensorizerReads(index));
  reads->verify_ = verify;
  reads->decrypts_ = encrypted;
  if (auto ok = reads->read_records(files); !ok) return std::unexpected(ok.error());
  if (auto ok = reads->resolve_keys(checks); !ok) return std::unexpected(ok.error());
  if (auto ok = reads->check_dataless(); !ok) return std::unexpected(ok.error());
  if (auto ok = reads->build_plan(layout, chunk_size, memory_limit); !ok) return std::unexpected(ok.error());
  return reads;
}

Status TensorizerReads::read_records(std::span<const io::ByteSource* const> files) {
  records_.resize(index_.tensors.size());
  checks_.resize(index_.tensors.size());
  key_of_.assign(index_.tensors.size(), nullptr);
  for (uint32_t f = 0; f < index_.files.size(); ++f) {
    std::vector<const format::TensorEntry*> tensors;
    std::vector<size_t> at;
    for (size_t i = 0; i < index_.tensors.size(); ++i)
      if (index_.tensors[i].file == f) tensors.push_back(&index_.tensors[i]), at.push_back(i);
    auto records = format::read_tensorizer_records(*files[f], tensors);
    if (!records) return std::unexpected(records.error());
    for (size_t k = 0; k < at.size(); ++k) records_[at[k]] = std::move((*records)[k]);
  }
  return {};
}

// One key for model.key; one per distinct Argon2id salt and parameters for model.passphrase
// (tensorizer writes one for the whole file).
Status TensorizerReads::resolve_keys(const TensorChecks& checks) {
  std::vector<std::pair<format::KeyDerivation, const format::TensorizerKey*>> derived;
  for (size_t i = 0; i < index_.tensors.size(); ++i) {
    const auto& cipher = records_[i].cipher;
    if (!cipher || index_.tensors[i].bytes == 0) continue;
    const std::string& file = index_.files[index_.tensors[i].file].path;
    if (!checks.key.empty()) {
      if (keys_.empty()) {
        auto key = format::TensorizerKey::parse(checks.key);
        if (!key) return std::unexpected(key.error());
        keys_.push_back(std::make_unique<format::TensorizerKey>(std::move(*key)));
      }
      key_of_[i] = keys_.front().get();
      continue;
    }
    if (checks.passphrase.empty())
      return fail(Code::bad_data, fmt::format("{}: encrypted: set model.key (or model.passphrase) to load it", file));
    if (!cipher->derivation)
      return fail(Code::bad_data, fmt::format("{}: tensor {} was encrypted with a key, not a passphrase: set model.key",
                                              file, printable(index_.tensors[i].name)));
    auto known = std::find_if(derived.begin(), derived.end(), [&](const auto& d) { return d.first == *cipher->derivation; });
    if (known == derived.end()) {
      const auto began = std::chrono::steady_clock::now();
      auto key = format::TensorizerKey::derive(checks.passphrase, *cipher->derivation);
      if (!key) return fail(key.error().code, fmt::format("{}: {}", file, key.error().message));
      keys_.push_back(std::make_unique<format::TensorizerKey>(std::move(*key)));
      known = derived.insert(derived.end(), {*cipher->derivation, keys_.back().get()});
      log::info(fmt::format("{}: key derived from model.passphrase in {:.3f} s (Argon2id over {})", file,
                            std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count(),
                            format_bytes(cipher->derivation->memlimit)));
    }
    key_of_[i] = known->second;
  }
  return {};
}

// Meta tensors and empty ones have no data to read: their checksums cover the header alone.
Status TensorizerReads::check_dataless() {
  if (!verify_) return {};
  for (size_t i = 0; i < index_.tensors.size(); ++i) {
    const auto& t = index_.tensors[i];
    if (!t.zeros && t.bytes > 0) continue;
    format::TensorizerChecksums check(records_[i]);
    if (auto ok = check.finish(index_.files[t.file].path, t.name); !ok) return ok;
  }
  return {};
}

Status TensorizerReads::build_plan(const ArenaLayout& layout, uint64_t chunk_size, uint64_t memory_limit) {
  chunk_size_ = chunk_size;
  std::vector<PlannedItem> items;
  PlannedItem open;  // small tensors sharing one read
  auto close_open = [&] {
    if (!open.reads.empty()) items.push_back(std::move(open));
    open = {};
  };
  auto piece = [&](size_t t, uint64_t lo, uint64_t hi) {
    const auto& tensor = index_.tensors[t];
    return std::pair{Piece{lo, layout.offsets[t] + (lo - tensor.file_offset), hi - lo}, static_cast<uint32_t>(t)};
  };
  for (size_t t = 0; t < index_.tensors.size(); ++t) {
    const auto& tensor = index_.tensors[t];
    if (tensor.zeros || tensor.bytes == 0) continue;
    const uint64_t begin = tensor.file_offset, end = begin + tensor.bytes;
    const auto& cipher = records_[t].cipher;
    // A MAC covers a whole encryption chunk, so a read holds whole ones: where they are larger
    // than stage.chunk_size, this tensor's reads (and every reader's buffer) grow to one of them,
    // within stage.memory_limit (the staging buffers' cap).
    const uint64_t read_size = cipher ? std::max(chunk_size, cipher->chunk_size) : chunk_size;
    if (read_size > chunk_size_) {
      if (read_size > memory_limit)
        return fail(Code::bad_manifest,
                    fmt::format("{}: tensor {} is encrypted in chunks of {}, more than stage.memory_limit ({}) can "
                                "buffer: raise stage.memory_limit", index_.files[tensor.file].path,
                                printable(tensor.name), format_bytes(read_size), format_bytes(memory_limit)));
      log::info(fmt::format("{}: tensor {} is encrypted in chunks of {}: reading it in chunks of that size "
                            "(stage.chunk_size {})", index_.files[tensor.file].path, printable(tensor.name),
                            format_bytes(read_size), format_bytes(chunk_size)));
      chunk_size_ = read_size;
    }
    if (!open.reads.empty()) {
      Chunk& c = open.reads.back().chunk;
      if (c.file == tensor.file && begin >= c.offset + c.len && end - c.offset <= chunk_size) {
        c.len = end - c.offset;
        open.reads.back().pieces.push_back(piece(t, begin, end));
        open.bytes += tensor.bytes;
        continue;
      }
    }
    close_open();
    if (tensor.bytes <= read_size) {
      open.reads.push_back({.chunk = {.file = tensor.file, .offset = begin, .len = tensor.bytes}, .pieces = {piece(t, begin, end)}});
      open.bytes = tensor.bytes;
      continue;
    }
    // A large tensor: whole encryption chunks from its start, or file-aligned reads (O_DIRECT).
    PlannedItem big;
    for (uint64_t at = begin; at < end;) {
      const uint64_t next = cipher ? std::min(end, at + read_size / cipher->chunk_size * cipher->chunk_size)
                                   : std::min(end, (at / chunk_size + 1) * chunk_size);
      big.reads.push_back({.chunk = {.file = tensor.file, .offset = at, .len = next - at}, .pieces = {piece(t, at, next)}});
      at = next;
    }
    big.bytes = tensor.bytes;
    if (verify_) {
      items.push_back(std::move(big));
    } else {
      for (auto& read : big.reads) {
        const uint64_t len = read.chunk.len;
        items.push_back({.reads = {std::move(read)}, .bytes = len});
      }
    }
  }
  close_open();
  // Largest first when whole tensors are items: the last one to start is then a short one.
  if (verify_)
    std::stable_sort(items.begin(), items.end(), [](const PlannedItem& a, const PlannedItem& b) { return a.bytes > b.bytes; });
  for (auto& item : items) {
    item_starts_.push_back(static_cast<uint32_t>(plan_.chunks.size()));
    for (auto& read : item.reads) {
      read.chunk.first_piece = static_cast<uint32_t>(plan_.pieces.size());
      read.chunk.piece_count = static_cast<uint32_t>(read.pieces.size());
      for (const auto& [p, tensor] : read.pieces) {
        plan_.pieces.push_back(p);
        piece_tensor_.push_back(tensor);
        plan_.bytes += p.len;
      }
      plan_.chunks.push_back(read.chunk);
    }
  }
  item_starts_.push_back(static_cast<uint32_t>(plan_.chunks.size()));
  return {};
}

// `data` is tensor bytes [at, at + data.size()): whole encryption chunks (the plan's doing).
Status TensorizerReads::decrypt(size_t tensor, uint64_t at, std::span<std::byte> data) const {
  const auto& t = index_.tensors[tensor];
  const auto& cipher = *records_[tensor].cipher;
  const std::string& file = index_.files[t.file].path;
  if (at % cipher.chunk_size != 0 || (data.size() % cipher.chunk_size != 0 && at + data.size() != t.bytes))
    return fail(Code::internal, fmt::format("{}: tensor {}: a read cuts an encryption chunk", file, printable(t.name)));
  for (uint64_t done = 0; done < data.size(); done += cipher.chunk_size) {
    const uint64_t index = (at + done) / cipher.chunk_size;
    const auto part = data.subspan(done, std::min<uint64_t>(cipher.chunk_size, data.size() - done));
    if (!format::open_tensorizer_chunk(*key_of_[tensor], cipher, index, part))
      return fail(Code::bad_data,
                  fmt::format("{}: tensor {}: decryption failed at chunk {} of {}: wrong model.key or model.passphrase, "
                              "or the data was altered", file, printable(t.name), index + 1, cipher.chunks()));
  }
  return {};
}

Status TensorizerReads::filter(size_t chunk_index, std::span<std::byte> bytes) {
  const Chunk& chunk = plan_.chunks[chunk_index];
  for (uint32_t p = chunk.first_piece; p < chunk.first_piece + chunk.piece_count; ++p) {
    const Piece& piece = plan_.pieces[p];
    const uint32_t t = piece_tensor_[p];
    const auto& tensor = index_.tensors[t];
    const uint64_t at = piece.file_offset - tensor.file_offset;
    const auto data = bytes.subspan(piece.file_offset - chunk.offset, piece.len);
    if (records_[t].cipher)
      if (auto ok = decrypt(t, at, data); !ok) return ok;
    if (!verify_) continue;
    // One reader runs a tensor's reads in order (one item), so its running check is its own.
    auto& check = checks_[t];
    if (at == 0) check.emplace(records_[t]);
    if (!check) return fail(Code::internal, fmt::format("tensor {} checked out of order", printable(tensor.name)));
    check->update(data);
    if (at + piece.len == tensor.bytes) {
      auto ok = check->finish(index_.files[tensor.file].path, tensor.name);
      check.reset();
      if (!ok) return ok;
    }
  }
  return {};
}

}  // namespace tensorinit::stage
