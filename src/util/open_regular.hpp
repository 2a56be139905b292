// Opening a file to read that must be a regular file, without waiting on what is not one.
// Thread-safe (no shared state); the caller owns the descriptor returned.
#pragma once

#include <sys/stat.h>

#include <string>

#include "util/fd.hpp"

namespace tensorinit {

// open(path, O_RDONLY | O_CLOEXEC) and fstat into `st`; the caller checks S_ISREG(st.st_mode).
// Opened O_NONBLOCK, so that a FIFO put under the name fails that check instead of holding the
// open until someone writes it (every signal is blocked there). O_NONBLOCK also turns the wait for
// a lease's holder (fcntl F_SETLEASE: Samba's kernel oplocks, knfsd's delegations) into
// EWOULDBLOCK, which failed the start (66, "Resource temporarily unavailable") where a plain open
// waits for the holder to flush and release (test: "open_for_reading: a file under a lease...");
// then the path is opened O_PATH, must be a regular file, and that inode is reopened through
// /proc/self/fd without O_NONBLOCK: it waits as a plain open does (until the holder releases, at
// most /proc/sys/fs/lease-break-time, 45 s by default). O_NONBLOCK is cleared on what is returned.
// On failure: an empty descriptor, errno set.
UniqueFd open_for_reading(const std::string& path, struct stat& st);

}  // namespace tensorinit
