// An in-memory ByteSource for tests: deterministic bytes, an optional alignment (like an O_DIRECT
// file) that it enforces, and an injectable failure.
#pragma once

#include <atomic>
#include <cstring>
#include <fmt/format.h>
#include <optional>
#include <vector>

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

}  // namespace tensorinit::testing
