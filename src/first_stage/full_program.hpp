// The first stage's one job besides blocking signals: exec the full (dynamic) program, with argv
// and the environment as they came, plus the mask handover entry (init/mask_handover.hpp).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "util/error.hpp"

namespace tensorinit::first_stage {

// Where the full program lives: tensorinit-full in the first stage's own directory, in the build
// tree (build/tensorinit, build/tensorinit-full) and in the package (bin/tensorinit,
// bin/tensorinit-full, which finds ../lib/tensorinit/libcurl.so.4 as the single binary did).
// `self` is this executable's path as /proc/self/exe gives it (every symlink resolved by the
// kernel). Never from the environment or argv[0]: PID 1 runs whatever this names. Pure; thread-safe.
std::string full_program_beside(std::string_view self);

// /proc/self/exe, then full_program_beside; without /proc (a chroot), the path execve was given
// (AT_EXECFN) through realpath. Code::internal when the executable was deleted while it ran or
// neither works. Thread-safe.
Result<std::string> full_program_path();

// execve(path, argv, envp without any handover entry + one for `mask`). Returns only when the
// exec failed: the error, Code::internal, naming the path. The mask and the signals pending
// against it carry over; call with every signal blocked. Not thread-safe (one thread).
Error exec_full_program(const std::string& path, char** argv, char** envp, std::uint64_t mask);

}  // namespace tensorinit::first_stage
