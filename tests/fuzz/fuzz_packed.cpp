// libFuzzer target: the input is a whole packed file. Its seek table goes through read_seek_table
// (via an in-memory ByteSource); an accepted table must keep the parser's promises, and then every
// decoded byte is read through PackedSource in uneven pieces: each read either succeeds or fails
// with Code::bad_data naming the file on one line. A broken promise aborts, so the fuzzer reports
// it like a crash.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "fuzz_checks.hpp"
#include "io/memory_source.hpp"
#include "format/packed_source.hpp"
#include "format/packed_table.hpp"

namespace {

using namespace tensorinit;
using namespace tensorinit::format;
using namespace tensorinit::fuzz;

// Decoded frames tile [0, decoded_size); stored frames lie in order before the table.
void check_table(const SeekTable& t, uint64_t file_size) {
  require(t.table_bytes <= file_size);
  uint64_t offset = 0, stored_end = 0;
  for (const auto& f : t.frames) {
    require(f.size > 0 && f.size <= kMaxPackedFrame);
    require(f.offset == offset);
    require(f.stored_offset >= stored_end);
    require(f.stored_offset + f.stored_size <= file_size - t.table_bytes);
    require(f.transform == 0 || f.transform == 2 || f.transform == 4);
    offset += f.size;
    stored_end = f.stored_offset + f.stored_size;
  }
  require(offset == t.decoded_size);
  for (size_t i = 0; i < t.frames.size(); ++i) require(t.frame_at(t.frames[i].offset) == i);
}

void check_error(const Error& e, std::string_view name) {
  require(e.code == Code::bad_data);
  require(e.message.find(name) != std::string::npos);
  require(e.message.find('\n') == std::string::npos);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  constexpr std::string_view kName = "fuzz.safetensors.zst";
  io::MemorySource source(std::string(kName), bytes);
  auto table = read_seek_table(source);
  if (!table) {
    check_error(table.error(), kName);
    return 0;
  }
  check_table(*table, size);
  auto packed = PackedSource::open(source);
  require(packed.has_value());
  // Decoding is bounded by the input (frames of at most 1 GiB, but lying sizes fail at the frame
  // header); skip huge claims only to keep each run fast.
  if ((*packed)->size() > (64u << 20)) return 0;
  std::vector<std::byte> out((*packed)->size());
  const uint64_t step = 1 + (size % 7919);
  for (uint64_t at = 0; at < out.size(); at += step) {
    const uint64_t len = std::min<uint64_t>(step, out.size() - at);
    if (auto ok = (*packed)->read_at(at, std::span(out.data() + at, len)); !ok) check_error(ok.error(), kName);
  }
  return 0;
}
