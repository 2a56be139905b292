#include "first_stage/entry.hpp"

// Zero-initialised (.bss, zeroed by the kernel when it maps the image, before the entry point runs).
extern "C" {
[[gnu::used]] std::uint64_t tensorinit_entry_mask = 0;
[[gnu::used]] std::uint32_t tensorinit_entry_ran = 0;
}

// rt_sigprocmask(SIG_SETMASK, &all, &tensorinit_entry_mask, 8), then the C library's _start with
// every register and the stack as the kernel left them (rdx: the exit hook, 0 from the kernel;
// the syscall clobbers only rax, rcx and r11). The kernel drops SIGKILL and SIGSTOP from the set.
// The set `all` is the stack word that holds argc (argc kept in r9 meanwhile): that page was
// written by the kernel, so the only page fault before the mask is set is this instruction's own.
// A set in .rodata was one more, taken inside the call before the mask changed (perf record -e
// page-faults -d, docs/notes/init20.md). The old mask is written to .bss after the new one is set.
#if defined(__x86_64__)
asm(R"(
  .text
  .globl tensorinit_entry
  .type tensorinit_entry, @function
tensorinit_entry:
  mov %rdx, %r8
  mov (%rsp), %r9
  movq $-1, (%rsp)
  mov $14, %eax
  mov $2, %edi
  mov %rsp, %rsi
  lea tensorinit_entry_mask(%rip), %rdx
  mov $8, %r10d
  syscall
  mov %r9, (%rsp)
  movl $1, tensorinit_entry_ran(%rip)
  mov %r8, %rdx
  jmp _start
  .size tensorinit_entry, .-tensorinit_entry
)");
#else
#error "src/first_stage/entry.cpp: the entry point is written for x86-64 only (port the rt_sigprocmask call)"
#endif
