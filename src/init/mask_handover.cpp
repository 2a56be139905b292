#include "init/mask_handover.hpp"

#include <cstring>

namespace tensorinit::init {
namespace {

// glibc reserves 32 and 33 for itself (its sigset functions refuse them); KILL and STOP cannot
// be blocked. Every other signal is one the first stage blocks.
bool blockable(int sig) noexcept {
  return sig != SIGKILL && sig != SIGSTOP && !(sig >= 32 && sig < SIGRTMIN);
}

bool blocks_everything(const sigset_t& mask) noexcept {
  for (int sig = 1; sig < NSIG && sig <= 64; ++sig)
    if (blockable(sig) && sigismember(&mask, sig) != 1) return false;
  return true;
}

// 16 hex digits after "NAME=", nothing else.
bool parse_entry(const char* entry, std::uint64_t& bits) noexcept {
  const char* p = entry + kMaskVariable.size() + 1;
  std::uint64_t value = 0;
  int digits = 0;
  for (; *p != '\0'; ++p, ++digits) {
    const char c = *p;
    int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (v < 0 || digits == 16) return false;
    value = value << 4 | static_cast<std::uint64_t>(v);
  }
  if (digits != 16) return false;
  bits = value;
  return true;
}

}  // namespace

sigset_t mask_from_bits(std::uint64_t bits) noexcept {
  sigset_t mask;
  sigemptyset(&mask);
  for (int sig = 1; sig < NSIG && sig <= 64; ++sig)
    if ((bits >> (sig - 1) & 1) != 0 && !(sig >= 32 && sig < SIGRTMIN)) sigaddset(&mask, sig);
  return mask;
}

std::uint64_t bits_from_mask(const sigset_t& mask) noexcept {
  std::uint64_t bits = 0;
  for (int sig = 1; sig < NSIG && sig <= 64; ++sig)
    if (!(sig >= 32 && sig < SIGRTMIN) && sigismember(&mask, sig) == 1) bits |= std::uint64_t{1} << (sig - 1);
  return bits;
}

void format_mask_entry(std::uint64_t bits, char (&out)[kMaskEntrySize]) noexcept {
  std::memcpy(out, kMaskVariable.data(), kMaskVariable.size());
  char* p = out + kMaskVariable.size();
  *p++ = '=';
  for (int shift = 60; shift >= 0; shift -= 4) *p++ = "0123456789abcdef"[bits >> shift & 0xf];
  *p = '\0';
}

bool is_mask_entry(const char* entry) noexcept {
  return std::strncmp(entry, kMaskVariable.data(), kMaskVariable.size()) == 0 && entry[kMaskVariable.size()] == '=';
}

bool adopt_handed_over_mask(sigset_t& found, char** envp) noexcept {
  if (envp == nullptr) return false;
  const bool from_first_stage = blocks_everything(found);
  bool adopted = false;
  char** out = envp;
  for (char** in = envp; *in != nullptr; ++in) {
    if (!is_mask_entry(*in)) {
      *out++ = *in;
      continue;
    }
    std::uint64_t bits = 0;
    if (from_first_stage && parse_entry(*in, bits)) {
      found = mask_from_bits(bits);
      adopted = true;
    }
  }
  *out = nullptr;
  return adopted;
}

}  // namespace tensorinit::init
