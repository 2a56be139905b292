// A ByteSource over bytes in memory: a small object already fetched whole (a model's
// index.json written through to the cache), and the fake behind the format readers' tests and the
// fuzz targets. Same contract as FileSource: a read past the end is Code::bad_data, nothing
// copied. Header-only, so that the fuzz targets need no more sources.
#pragma once

#include <cstring>
#include <fmt/format.h>
#include <memory>
#include <string>
#include <string_view>

#include "io/byte_source.hpp"

namespace tensorinit::io {

class MemorySource final : public ByteSource {
 public:
  // Over `bytes`, not owned: they must outlive the source. `alignment` is only reported (what
  // alignment() says); reads of any shape are served.
  MemorySource(std::string name, std::string_view bytes, uint64_t alignment = 1)
      : name_(std::move(name)), bytes_(bytes), alignment_(alignment < 1 ? 1 : alignment) {}

  // A source that holds its own copy of `bytes`.
  static std::unique_ptr<MemorySource> owning(std::string name, std::string bytes, uint64_t alignment = 1) {
    auto held = std::make_unique<std::string>(std::move(bytes));
    auto source = std::make_unique<MemorySource>(std::move(name), std::string_view(*held), alignment);
    source->owned_ = std::move(held);
    return source;
  }

  // Not copyable or movable: an owning source's view points into itself.
  MemorySource(const MemorySource&) = delete;
  MemorySource& operator=(const MemorySource&) = delete;

  uint64_t size() const override { return bytes_.size(); }
  const std::string& name() const override { return name_; }
  uint64_t alignment() const override { return alignment_; }

  // Thread-safe (the bytes are never written).
  Status read_at(uint64_t offset, std::span<std::byte> out) const override {
    if (offset > bytes_.size() || out.size() > bytes_.size() - offset)
      return fail(Code::bad_data, fmt::format("{}: source ended at offset {} (asked for {} bytes at {})", name_,
                                              bytes_.size(), out.size(), offset));
    if (!out.empty()) std::memcpy(out.data(), bytes_.data() + offset, out.size());
    return {};
  }

 private:
  std::string name_;
  std::string_view bytes_;
  uint64_t alignment_;
  std::unique_ptr<std::string> owned_;  // set by owning(): what bytes_ views
};

}  // namespace tensorinit::io
