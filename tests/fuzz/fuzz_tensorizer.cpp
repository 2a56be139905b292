// libFuzzer target: the input is a whole tensorizer file, read through read_tensorizer (via an
// in-memory ByteSource). Beyond "no crash, no sanitizer report", every accepted layout must keep
// the reader's promises to the stage; a broken promise aborts, so the fuzzer reports it as a crash.
// Seeds: tests/fuzz/corpus/tensorizer-*.tensors (real files with the index padding trimmed, so
// they fit -max_len).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string_view>

#include "fuzz_checks.hpp"
#include "io/memory_source.hpp"
#include "format/dtype.hpp"
#include "format/tensorizer.hpp"

namespace {

using namespace tensorinit;
using namespace tensorinit::format;
using namespace tensorinit::fuzz;

void check_layout(const TensorizerLayout& layout, uint64_t size) {
  require(layout.version >= 1 && layout.version <= 5);
  require(layout.index_end >= kTensorizerFileHeader && layout.index_end <= layout.data_end);
  require(layout.data_end <= size);
  std::set<std::string> names;
  uint64_t prev_end = 0;
  for (const auto& t : layout.tensors) {
    require(!t.name.empty() && names.insert(t.name).second);
    require_json_safe(t.name);
    require(t.header_offset >= layout.index_end && t.header_offset < t.file_offset);
    require(t.file_offset >= prev_end);  // sorted; data ranges never overlap
    auto bits = dtype_bits(t.dtype);
    require(bits.has_value());
    u128 want = *bits;
    for (uint64_t d : t.shape) want *= d;  // accepted: every partial product fits 64 bits, so no wrap
    require(want % 8 == 0 && want / 8 == t.bytes);
    if (t.zeros) {
      require(layout.version >= 4 && t.bytes > 0);
      prev_end = t.file_offset;  // nothing of it is in the file
    } else {
      require(t.bytes <= layout.data_end && t.file_offset <= layout.data_end - t.bytes);
      prev_end = t.file_offset + t.bytes;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  constexpr std::string_view kName = "fuzz.tensors";
  io::MemorySource source(std::string(kName), bytes);
  if (auto layout = read_tensorizer(source)) {
    check_layout(*layout, size);
  } else {
    const Error& e = layout.error();
    require(e.code == Code::bad_data || e.code == Code::no_source);
    require(e.message.find(kName) != std::string::npos);
    require(e.message.find('\n') == std::string::npos);
    require_json_safe(e.message);
  }
  // The name and dtype decoders on their own, on the same bytes.
  const std::string key = tensorizer_state_dict_key(bytes);
  require(key.find('\0') == std::string::npos);
  const std::string dtype = tensorizer_dtype(bytes);
  require(dtype.empty() || dtype_bits(dtype).has_value());
  return 0;
}
