// libFuzzer target: the input is a model.safetensors.index.json. The flat reader
// (format/shard_index.cpp) must give what the DOM reader it replaced gives (shard_index_reference.hpp):
// a difference aborts, so the fuzzer reports it like a crash.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "shard_index_reference.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (!tensorinit::format::reference::difference(text).empty()) std::abort();
  return 0;
}
