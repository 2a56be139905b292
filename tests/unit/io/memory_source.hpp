// A ByteSource over bytes in memory: the fake for format readers (unit tests and the fuzz target).
// Same contract as FileSource: a read past the end is Code::bad_data. Thread-safe (immutable).
#pragma once

#include <cstring>
#include <fmt/format.h>
#include <string>
#include <string_view>

#include "io/byte_source.hpp"

namespace tensorinit::io {

class MemorySource final : public ByteSource {
 public:
  MemorySource(std::string name, std::string_view bytes) : name_(std::move(name)), bytes_(bytes) {}

  uint64_t size() const override { return bytes_.size(); }
  const std::string& name() const override { return name_; }

  Status read_at(uint64_t offset, std::span<std::byte> out) const override {
    if (offset > bytes_.size() || out.size() > bytes_.size() - offset)
      return fail(Code::bad_data, fmt::format("{}: source ended at offset {} (asked for {} bytes at {})", name_,
                                              bytes_.size(), out.size(), offset));
    if (!out.empty()) std::memcpy(out.data(), bytes_.data() + offset, out.size());
    return {};
  }

 private:
  std::string name_;
  std::string_view bytes_;  // not owned: outlives the source
};

}  // namespace tensorinit::io
