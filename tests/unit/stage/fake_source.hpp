// An in-memory ByteSource for tests: deterministic bytes, an optional alignment (like an O_DIRECT
// file) that it enforces, and an injectable failure.
#pragma once

#include <atomic>
#include <cstring>
#include <fmt/format.h>
#include <initializer_list>
#include <optional>
#include <vector>

#include "format/tensor_index.hpp"
#include "io/byte_source.hpp"

namespace tensorinit::testing {

class FakeSource final : public io::ByteSource {
 public:
  FakeSource(std::string name, uint64_t size, uint64_t alignment = 1) : name_(std::move(name)), align_(alignment) {
    bytes_.resize(size);
    for (uint64_t i = 0; i < size; ++i) bytes_[i] = static_cast<std::byte>((i * 2654435761u) >> 13);
  }

  uint64_t size() const override { return bytes_.size(); }
  const std::string& name() const override { return name_; }
  uint64_t alignment() const override { return align_; }

  Status read_at(uint64_t offset, std::span<std::byte> out) const override {
    reads++;
    if (fail_at && offset <= *fail_at && *fail_at < offset + out.size())
      return fail(Code::io, fmt::format("{}: injected failure at {}", name_, *fail_at));
    if (offset + out.size() > bytes_.size()) return fail(Code::bad_data, fmt::format("{}: read past end", name_));
    // A direct read must be aligned unless it is the short tail at the end of the file.
    const bool tail = offset + out.size() == bytes_.size() && out.size() < align_;
    if (align_ > 1 && !tail &&
        (offset % align_ || out.size() % align_ || reinterpret_cast<uintptr_t>(out.data()) % align_))
      misaligned++;
    std::memcpy(out.data(), bytes_.data() + offset, out.size());
    return {};
  }

  const std::vector<std::byte>& bytes() const { return bytes_; }
  std::optional<uint64_t> fail_at;
  mutable std::atomic<int> reads{0};
  mutable std::atomic<int> misaligned{0};

 private:
  std::string name_;
  uint64_t align_;
  std::vector<std::byte> bytes_;
};

// Tensors of odd sizes packed back to back after `header` bytes of each file, like safetensors:
// as many of `lengths` as fit, named f<file>.t<n>, dtype U8.
inline format::ModelIndex odd_tensors_index(const std::vector<const FakeSource*>& files, uint64_t header,
                                            std::initializer_list<uint64_t> lengths) {
  format::ModelIndex index;
  uint32_t file = 0;
  for (const FakeSource* src : files) {
    index.files.push_back({src->name(), src->size()});
    uint64_t at = header, n = 0;
    for (uint64_t len : lengths) {
      if (at + len > src->size()) break;
      index.tensors.push_back({.name = fmt::format("f{}.t{}", file, n++), .dtype = "U8", .shape = {len},
                               .file = file, .file_offset = at, .bytes = len});
      at += len;
    }
    ++file;
  }
  return index;
}

}  // namespace tensorinit::testing
