// The readers' one position in the read plan, for settings that share it (ReadSetting::shared,
// stage/read_controller.hpp): chunks in plan order (file by file, in offset order), each handed out
// whole or in parts, and how far ahead of it to announce the file (WILLNEED). Used by
// stage/pipeline.cpp under its governor's mutex.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "stage/layout.hpp"

namespace tensorinit::stage {

// Thread-safety: none (the caller serialises).
class ReadCursor {
 public:
  explicit ReadCursor(const ReadPlan& plan) : plan_(plan) {}

  struct Part {
    size_t chunk = 0;
    uint64_t from = 0, to = 0;  // bytes [from, to) of the chunk
  };
  // The next part: up to the next file offset that is a multiple of `request` (at most `request`
  // bytes; so parts stay aligned as the file's offsets are), or the chunk's end; `request` 0: the
  // rest of the chunk. nullopt when every chunk is handed out.
  std::optional<Part> take(uint64_t request);

  // File bytes [first, second) of `part`'s file to announce (WILLNEED) so that what is announced
  // reaches kAhead past the part's end; empty while it still reaches 3/4 of that. The kernel's own
  // readahead is not enough for readers sharing a cursor: a read whose preceding pages are not
  // cached (the cursor resumed mid-file after whole-chunk epochs, or the readers' reads overlap
  // out of order) counts as a random read and is read alone, so the device sees 8 x 256 KiB.
  // The configuration measured in docs/notes/copy18.md announces ahead; the A/B against none was
  // within this machine's noise (0.53-1.05 GB/s either way, load 5).
  std::pair<uint64_t, uint64_t> announce(const Part& part);

  static constexpr uint64_t kAhead = 32ull << 20;

 private:
  const ReadPlan& plan_;
  size_t chunk_ = 0;
  uint64_t at_ = 0;
  uint32_t announced_file_ = 0;
  uint64_t announced_ = 0;  // of announced_file_: announced up to here
};

// The pieces of `pieces` within file bytes [from, to), clipped to it, into `out` (cleared first):
// what a part of a chunk feeds.
void clip_pieces(std::span<const Piece> pieces, uint64_t from, uint64_t to, std::vector<Piece>& out);

// `part` as a chunk of its own (file bytes [offset + from, offset + to)) and the pieces it feeds:
// the plan's own for a whole chunk, else clipped into `scratch` (valid until its next use).
std::pair<Chunk, std::span<const Piece>> part_of(const ReadPlan& plan, const ReadCursor::Part& part,
                                                 std::vector<Piece>& scratch);

}  // namespace tensorinit::stage
