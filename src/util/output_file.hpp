// A file tensorinit rewrites and removes during a run (the report, handoff.ready.file) in a
// directory that its server may be able to write. tensorinit is often root: a server that swaps
// that directory for a symlink (to /etc) must not get tensorinit's writes and unlinks sent there.
// The directory is created if missing and opened once, at construction (before any server of this
// run exists); every write (a temporary with O_EXCL | O_NOFOLLOW, renameat over the name, fsync)
// and remove (unlinkat) goes through that descriptor, so they land in the directory that was
// opened, wherever it is renamed to. Limit: a symlink already there at construction (planted by an
// earlier run's server on a persistent volume) is followed, like any path the operator wrote.
// Thread-safety: write and remove may run at once (distinct temporaries; rename is atomic).
#pragma once

#include <string>
#include <string_view>

#include "util/error.hpp"
#include "util/fd.hpp"

namespace tensorinit {

class OutputFile {
 public:
  OutputFile() = default;
  OutputFile(std::string path);  // NOLINT(google-explicit-constructor): where a path was
  OutputFile(const char* path) : OutputFile(std::string(path)) {}  // NOLINT(google-explicit-constructor)

  const std::string& path() const { return path_; }
  bool empty() const { return path_.empty(); }
  // Atomically (util/atomic_file.hpp); Code::io naming the path. Empty path: nothing.
  Status write(std::string_view content) const;
  void remove() const;  // the name, if there; never what a symlink under it names

 private:
  std::string path_, name_;
  UniqueFd dir_;
  int open_errno_ = 0;  // why dir_ could not be opened
};

}  // namespace tensorinit
