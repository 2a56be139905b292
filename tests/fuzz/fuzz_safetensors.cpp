// libFuzzer target: the input is a whole safetensors file. It goes through read_safetensors (via an
// in-memory ByteSource) and, as raw JSON, through parse_safetensors_header. Beyond "no crash, no
// sanitizer report", every accepted layout must satisfy what the readers promise their callers;
// a broken promise aborts, so the fuzzer reports it like a crash.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "fuzz_checks.hpp"
#include "io/memory_source.hpp"
#include "format/dtype.hpp"
#include "format/safetensors.hpp"

namespace {

using namespace tensorinit;
using namespace tensorinit::format;
using namespace tensorinit::fuzz;

// Tensors sorted by offset tile [data_start, data_start + data_size) exactly; sizes match shapes.
void check_layout(const SafetensorsLayout& layout) {
  uint64_t cursor = layout.data_start;
  for (const auto& t : layout.tensors) {
    require(t.file_offset == cursor);
    require_json_safe(t.name);
    require(t.bytes <= UINT64_MAX - cursor);
    cursor += t.bytes;
    auto bits = dtype_bits(t.dtype);
    require(bits.has_value());
    // bits × elements == 8 × bytes, computed without overflow.
    const u128 want = static_cast<u128>(t.bytes) * 8;
    u128 total = *bits;
    bool zero = false;
    for (uint64_t d : t.shape) zero |= d == 0;
    if (zero) {
      require(t.bytes == 0);
      continue;
    }
    for (uint64_t d : t.shape) {
      require(total <= want / d);
      total *= d;
    }
    require(total == want);
  }
  require(cursor - layout.data_start == layout.data_size);
  require(layout.data_size <= UINT64_MAX - layout.data_start);
}

void check_error(const Error& e, std::string_view name) {
  require(e.code == Code::bad_data || e.code == Code::no_source);
  require(e.message.find(name) != std::string::npos);
  require(e.message.find('\n') == std::string::npos);
  require_json_safe(e.message);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  constexpr std::string_view kName = "fuzz.safetensors";

  io::MemorySource source(std::string(kName), bytes);
  if (auto layout = read_safetensors(source)) {
    check_layout(*layout);
    require(layout->data_start + layout->data_size == size);  // no trailing bytes, nothing missing
  } else {
    check_error(layout.error(), kName);
  }

  // The same bytes as a bare header: exercises the JSON checks without the 8-byte prefix.
  if (auto layout = parse_safetensors_header(bytes, 8 + size, kName))
    check_layout(*layout);
  else
    check_error(layout.error(), kName);
  return 0;
}
