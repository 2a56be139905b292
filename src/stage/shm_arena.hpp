// A host arena: one file in /dev/shm that the server maps by path. Created without a name
// (O_TMPFILE: a process killed while staging leaves nothing) and linked into place only when
// staging succeeded, so no later start can mistake a half-written arena for a complete one.
// Where O_TMPFILE (or /proc, for linkat) is missing, the temporary gets a random name with O_EXCL:
// never a PID, which is 1 for every container's init. Removed on destruction unless kept.
// The caller holds the model name's NameLock (stage/name_lock.hpp) from create until the arena
// is gone or handed on: the published name is replaced atomically, never under another owner.
// Thread-safety: none (one owner).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

#include "util/error.hpp"
#include "util/fd.hpp"

namespace tensorinit::stage {

std::string arena_path(const std::string& shm_dir, const std::string& model, int index);

class ShmArena {
 public:
  // Checks the free space of `shm_dir` first: too little is Code::io naming the fix.
  static Result<ShmArena> create(const std::string& shm_dir, const std::string& model, int index, uint64_t bytes);

  ShmArena(ShmArena&& other) noexcept { *this = std::move(other); }
  ShmArena& operator=(ShmArena&& other) noexcept;
  ShmArena(const ShmArena&) = delete;
  ShmArena& operator=(const ShmArena&) = delete;
  ~ShmArena() { remove(); }

  uint64_t size() const { return bytes_; }
  const std::string& path() const { return final_path_; }
  int fd() const { return fd_.get(); }

  // Gives the arena its final name (atomically replacing a stale one).
  Status publish();
  // Leaves the published arena in place after destruction (exec handoff, load --keep);
  // keep(false) takes that back (an exec that failed).
  void keep(bool yes = true) { keep_ = yes; }
  // The name the arena has now: empty while it is an unnamed O_TMPFILE.
  const std::string& temp_path() const { return temp_path_; }

 private:
  ShmArena() = default;
  void remove();  // unlinks what this arena still owns

  std::string temp_path_;     // empty while unnamed
  std::string final_path_;
  std::string partial_base_;  // "<shm_dir>/.tensorinit-<model>@<index>." for named temporaries
  UniqueFd fd_;
  uint64_t bytes_ = 0;
  bool published_ = false;
  bool keep_ = false;
};

// Removes named temporaries of `model` (`.tensorinit-<model>@<index>.<random>.partial`) left by a
// process killed while staging or publishing. Only while holding the name's NameLock: every
// earlier holder is gone then, so whatever partial is there is stale (no PID is consulted).
void remove_stale_partials(const std::string& shm_dir, const std::string& model);

}  // namespace tensorinit::stage
