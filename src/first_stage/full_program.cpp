#include "first_stage/full_program.hpp"

#include <limits.h>
#include <stdlib.h>
#include <sys/auxv.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fmt/format.h>
#include <vector>

#include "init/mask_handover.hpp"

namespace tensorinit::first_stage {

std::string full_program_beside(std::string_view self) {
  const auto slash = self.rfind('/');
  const std::string_view dir = slash == std::string_view::npos ? std::string_view(".") : self.substr(0, slash);
  return fmt::format("{}/tensorinit-full", dir);
}

Result<std::string> full_program_path() {
  char self[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", self, sizeof self);
  const int proc_error = errno;
  if (n > 0 && static_cast<size_t>(n) < sizeof self) {
    const std::string_view path(self, static_cast<size_t>(n));
    if (path.ends_with(" (deleted)"))
      return fail(Code::internal, fmt::format("{} was deleted while it ran: cannot find tensorinit-full beside it", path));
    return full_program_beside(path);
  }
  // No /proc (a bare chroot): the path this process was exec'd by (AT_EXECFN, relative to the
  // unchanged working directory), its symlinks resolved the same way.
  const char* execfn = reinterpret_cast<const char*>(::getauxval(AT_EXECFN));
  if (execfn != nullptr && ::realpath(execfn, self) != nullptr) return full_program_beside(self);
  return fail(Code::internal, fmt::format("cannot find its own executable (/proc/self/exe: {}): tensorinit-full is "
                                          "looked for beside it", n < 0 ? std::strerror(proc_error) : "path too long"));
}

Error exec_full_program(const std::string& path, char** argv, char** envp, std::uint64_t mask) {
  char entry[init::kMaskEntrySize];
  init::format_mask_entry(mask, entry);
  std::vector<char*> env;
  for (char** e = envp; e != nullptr && *e != nullptr; ++e)
    if (!init::is_mask_entry(*e)) env.push_back(*e);
  env.push_back(entry);
  env.push_back(nullptr);
  ::execve(path.c_str(), argv, env.data());
  const int error = errno;
  return Error{Code::internal,
               fmt::format("cannot run {}: {} (tensorinit execs the full program, tensorinit-full, installed beside it: "
                           "copy both)", path, std::strerror(error))};
}

}  // namespace tensorinit::first_stage
