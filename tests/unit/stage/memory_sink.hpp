// A Sink into a byte vector standing in for an arena: the fake for pipeline tests. Thread-safe for
// distinct chunks (pieces never overlap), like the real sinks.
#pragma once

#include <cstring>
#include <span>
#include <vector>

#include "stage/sink.hpp"

namespace tensorinit::testing {

class MemorySink final : public stage::Sink {
 public:
  explicit MemorySink(std::vector<std::byte>& arena) : arena_(arena) {}
  Status consume(const stage::Chunk& chunk, std::span<const stage::Piece> pieces, const std::byte* bytes, bool) override {
    for (const auto& p : pieces) std::memcpy(arena_.data() + p.dest_offset, bytes + (p.file_offset - chunk.offset), p.len);
    return {};
  }

 private:
  std::vector<std::byte>& arena_;
};

}  // namespace tensorinit::testing
