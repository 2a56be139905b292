// The first stage's mask handover (init/mask_handover.hpp): pure functions on masks and arrays.
#include <doctest/doctest.h>
#include <signal.h>

#include <cstring>
#include <string>
#include <vector>

#include "init/mask_handover.hpp"

using namespace tensorinit::init;

namespace {

sigset_t full_mask() {
  sigset_t all;
  sigfillset(&all);
  return all;
}

// A NUL-terminated envp over copies of `entries`.
struct Env {
  std::vector<std::string> storage;
  std::vector<char*> envp;
  explicit Env(std::vector<std::string> entries) : storage(std::move(entries)) {
    for (auto& e : storage) envp.push_back(e.data());
    envp.push_back(nullptr);
  }
  std::vector<std::string> left() const {
    std::vector<std::string> out;
    for (char* const* e = envp.data(); *e != nullptr; ++e) out.emplace_back(*e);
    return out;
  }
};

std::string entry_for(std::uint64_t bits) {
  char entry[kMaskEntrySize];
  format_mask_entry(bits, entry);
  return entry;
}

}  // namespace

TEST_CASE("mask_handover: bits and sigset_t round-trip; glibc's own 32 and 33 are left out") {
  const std::uint64_t bits = std::uint64_t{1} << (SIGTERM - 1) | std::uint64_t{1} << (SIGUSR1 - 1) |
                             std::uint64_t{1} << (SIGRTMIN + 1 - 1);
  const sigset_t mask = mask_from_bits(bits);
  CHECK(sigismember(&mask, SIGTERM) == 1);
  CHECK(sigismember(&mask, SIGUSR1) == 1);
  CHECK(sigismember(&mask, SIGINT) == 0);
  CHECK(bits_from_mask(mask) == bits);
  CHECK(bits_from_mask(mask_from_bits(0)) == 0);
  CHECK(entry_for(bits) == "TENSORINIT_FIRST_STAGE_MASK=0000000400004200");
  CHECK(entry_for(~std::uint64_t{0}) == "TENSORINIT_FIRST_STAGE_MASK=ffffffffffffffff");
}

TEST_CASE("mask_handover: the full program adopts the mask only when it starts with everything blocked") {
  const std::uint64_t term = std::uint64_t{1} << (SIGTERM - 1);
  SUBCASE("from the first stage: adopted, and every entry leaves the environment") {
    Env env({"A=1", entry_for(term), "B=2", entry_for(term)});
    sigset_t found = full_mask();
    CHECK(adopt_handed_over_mask(found, env.envp.data()));
    CHECK(bits_from_mask(found) == term);
    CHECK(env.left() == std::vector<std::string>{"A=1", "B=2"});
  }
  SUBCASE("set by hand on a program started normally: removed, ignored") {
    Env env({entry_for(term), "A=1"});
    sigset_t found;
    sigemptyset(&found);
    CHECK_FALSE(adopt_handed_over_mask(found, env.envp.data()));
    CHECK(bits_from_mask(found) == 0);
    CHECK(env.left() == std::vector<std::string>{"A=1"});
  }
  SUBCASE("malformed values are removed and leave the mask as found") {
    for (const char* bad : {"TENSORINIT_FIRST_STAGE_MASK=", "TENSORINIT_FIRST_STAGE_MASK=12",
                            "TENSORINIT_FIRST_STAGE_MASK=00000000000040000", "TENSORINIT_FIRST_STAGE_MASK=000000000000400G"}) {
      CAPTURE(bad);
      Env env({bad});
      sigset_t found = full_mask();
      CHECK_FALSE(adopt_handed_over_mask(found, env.envp.data()));
      CHECK(sigismember(&found, SIGTERM) == 1);
      CHECK(sigismember(&found, SIGINT) == 1);
      CHECK(env.left().empty());
    }
  }
  SUBCASE("names that only start alike stay") {
    Env env({"TENSORINIT_FIRST_STAGE_MASKED=1", "TENSORINIT_FIRST_STAGE_MAS=1"});
    sigset_t found = full_mask();
    adopt_handed_over_mask(found, env.envp.data());
    CHECK(env.left().size() == 2);
  }
}
