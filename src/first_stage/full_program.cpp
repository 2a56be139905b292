#include "first_stage/full_program.hpp"

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
  char self[4096];
  const ssize_t n = ::readlink("/proc/self/exe", self, sizeof self);
  if (n <= 0 || static_cast<size_t>(n) >= sizeof self)
    return fail(Code::internal, fmt::format("cannot read /proc/self/exe ({}): tensorinit finds tensorinit-full "
                                            "beside its own executable, so /proc must be mounted",
                                            n < 0 ? std::strerror(errno) : "path too long"));
  const std::string_view path(self, static_cast<size_t>(n));
  if (path.ends_with(" (deleted)"))
    return fail(Code::internal, fmt::format("{} was deleted while it ran: cannot find tensorinit-full beside it", path));
  return full_program_beside(path);
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
