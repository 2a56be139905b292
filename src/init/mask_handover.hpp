// How the first stage (src/first_stage) hands the signal mask it was started with to the full
// program it execs. The mask it runs with (every signal blocked, set by its first instructions)
// survives execve, and so do signals pending against it; the mask it was *started* with travels
// in one environment entry, TENSORINIT_FIRST_STAGE_MASK=<16 hex digits>, which the full program
// takes out of its environment before anything else runs, so the server never inherits it.
// The entry counts only in a process that starts with every signal blocked (what the first stage
// execs with): set by hand on a program started normally, it is removed and ignored.
#pragma once

#include <signal.h>

#include <cstdint>
#include <string_view>

namespace tensorinit::init {

inline constexpr std::string_view kMaskVariable = "TENSORINIT_FIRST_STAGE_MASK";
// "TENSORINIT_FIRST_STAGE_MASK=" + 16 hex digits + NUL.
inline constexpr std::size_t kMaskEntrySize = kMaskVariable.size() + 1 + 16 + 1;

// The kernel's 64-bit mask (bit N-1: signal N) as a sigset_t, and back. Pure; thread-safe.
sigset_t mask_from_bits(std::uint64_t bits) noexcept;
std::uint64_t bits_from_mask(const sigset_t& mask) noexcept;

// Writes the environment entry for `bits` into `out` (NUL-terminated). Pure; thread-safe.
void format_mask_entry(std::uint64_t bits, char (&out)[kMaskEntrySize]) noexcept;

// True when `envp[i]` is a TENSORINIT_FIRST_STAGE_MASK entry.
bool is_mask_entry(const char* entry) noexcept;

// The full program's side, first thing (.preinit_array): removes every handover entry from
// `envp` in place (the array `environ` points to), and when `found` (the mask the process
// started with) blocks every signal and an entry parses, replaces `found` with the mask handed
// over; returns true then (the process was exec'd by the first stage). Allocates nothing, calls
// nothing but string compares: safe before the C++ runtime is up. Not thread-safe (before any
// thread exists).
bool adopt_handed_over_mask(sigset_t& found, char** envp) noexcept;

}  // namespace tensorinit::init
