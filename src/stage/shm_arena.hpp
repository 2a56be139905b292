// A host arena: one file in /dev/shm that the server maps by path. Created under a temporary
// name and renamed into place only when staging succeeded, so no later start can mistake a
// half-written arena for a complete one. Removed on destruction unless kept.
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

  // Renames the arena to its final name (atomically replacing a stale one).
  Status publish();
  // Leaves the published arena in place after destruction (exec handoff, load --keep).
  void keep() { keep_ = true; }

 private:
  ShmArena() = default;
  void remove();  // unlinks what this arena still owns

  std::string temp_path_, final_path_;
  UniqueFd fd_;
  uint64_t bytes_ = 0;
  bool published_ = false;
  bool keep_ = false;
};

// Removes temporary arenas of `model` left by processes that no longer exist.
void remove_stale_partials(const std::string& shm_dir, const std::string& model);

}  // namespace tensorinit::stage
