// Files that readers trust (the tensor table, the report) appear whole or not at all.
#pragma once

#include <string>
#include <string_view>

#include "util/error.hpp"

namespace tensorinit {

// Writes to a temporary name in the same directory (created if missing), fsyncs, renames.
// The rename is made durable too (the directory is fsynced), so that a record written this way
// survives a power cut along with the data it describes.
Status write_file_atomically(const std::string& path, std::string_view content);

// Removes what write_file_atomically(path, ...) leaves behind when its writer dies between
// creating its temporary and the rename (`<path>.<16 hex digits>.tmp`: a crash, SIGKILL). Only
// for a caller that knows no other writer of `path` is alive (the holder of the model's name
// lock, stage/name_lock.hpp); nothing else in the directory matches that name exactly.
void remove_stale_temporaries(const std::string& path);

// 16 random hex digits (getrandom) for temporary names: unlike a PID (1 for every container's
// init), they do not collide between instances sharing a directory.
std::string random_suffix();

// The same, for `name` in the directory open as `dir` (openat, renameat, fsync of dir): whatever
// that directory's path names by now. `shown` names the file in errors.
Status write_file_atomically_at(int dir, const std::string& name, const std::string& shown, std::string_view content);

// The whole content of a small file (a table, a record); Code::io naming `what` and the path.
Result<std::string> read_whole_file(const std::string& path, std::string_view what = "file");

// fsyncs the directory holding `path`, so that a rename or unlink in it is durable.
Status fsync_parent_directory(const std::string& path);

}  // namespace tensorinit
