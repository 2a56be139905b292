// The first stage's entry point (linked with -Wl,-e,tensorinit_entry in front of the C library's
// _start): its first instructions block every blockable signal, so a SIGTERM that reaches a fresh
// PID namespace's init at any moment after execve is queued, never dropped (the kernel discards a
// signal to a namespace's init only while it is unblocked and at its default disposition).
#pragma once

#include <cstdint>

extern "C" {
// The signal mask this process was started with (the kernel's 64 bits), as the entry point found
// it before it blocked everything. Written once, before the C library starts; read-only after.
extern std::uint64_t tensorinit_entry_mask;
// Nonzero once the entry point ran (a binary started through _start instead leaves it 0).
extern std::uint32_t tensorinit_entry_ran;
}
