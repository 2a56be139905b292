// The keyed hash of util/name_table.hpp.
#include "util/name_table.hpp"

#include <sys/random.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdint>

#define XXH_INLINE_ALL  // header-only: no library to link (libxxhash-dev)
#include <xxhash.h>

namespace tensorinit {
namespace {

struct Secret {
  std::array<unsigned char, 192> bytes{};  // XXH3_SECRET_SIZE_MIN is 136
  Secret() {
    size_t got = 0;
    while (got < bytes.size()) {
      const ssize_t n = getrandom(bytes.data() + got, bytes.size() - got, 0);
      if (n > 0) got += static_cast<size_t>(n);
      else if (n < 0 && errno != EINTR) break;
    }
    if (got < bytes.size()) {
      // No getrandom (seccomp refusing it): the clock and this object's address vary per run;
      // XXH3_generateSecret spreads them over the whole secret.
      const auto seed = std::chrono::steady_clock::now().time_since_epoch().count() ^
                        static_cast<long long>(reinterpret_cast<uintptr_t>(this));
      XXH3_generateSecret(bytes.data(), bytes.size(), &seed, sizeof seed);
    }
  }
};

}  // namespace

uint64_t name_hash(std::string_view name) {
  static const Secret secret;
  return XXH3_64bits_withSecret(name.data(), name.size(), secret.bytes.data(), secret.bytes.size());
}

}  // namespace tensorinit
