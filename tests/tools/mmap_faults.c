// LD_PRELOAD shim for tests: faults in the file mappings tensorinit reads weights through, at an
// exact moment instead of a timed one. Build: cc -shared -fPIC -o mmap_faults.so mmap_faults.c -ldl
//   MMAP_REFUSED_UNDER=PREFIX  every MAP_SHARED mmap of a file whose path starts with PREFIX fails
//                              with ENODEV: a filesystem that refuses shared mappings (FUSE does for
//                              a file opened with FOPEN_DIRECT_IO unless its server allows mmap)
//   MMAP_CHANGE=cut|rewrite and MMAP_CHANGE_PATH=PATH: right after the first MAP_POPULATE mapping
//                              of PATH is made (before anything reads it), PATH is cut short to the
//                              middle of the mapped range (cut), or the mapped range is overwritten
//                              in place with other bytes of the same length (rewrite); once.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static int path_of(int fd, char* path, size_t size) {
  char link[64];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  const ssize_t n = readlink(link, path, size - 1);
  if (n <= 0) return 0;
  path[n] = 0;
  return 1;
}

static void change(const char* path, const char* how, off_t off, size_t len) {
  if (strcmp(how, "cut") == 0) {
    if (truncate(path, off + (off_t)(len / 2)) != 0) perror("mmap_faults: truncate");
    return;
  }
  int fd = open(path, O_WRONLY);
  if (fd < 0) return perror("mmap_faults: open");
  char buf[65536];
  for (size_t done = 0; done < len;) {
    const size_t n = len - done < sizeof buf ? len - done : sizeof buf;
    memset(buf, 0x5a, n);
    if (pwrite(fd, buf, n, off + (off_t)done) != (ssize_t)n) perror("mmap_faults: pwrite");
    done += n;
  }
  close(fd);
}

void* mmap(void* addr, size_t len, int prot, int flags, int fd, off_t off) {
  static void* (*real)(void*, size_t, int, int, int, off_t);
  static int changed;
  if (!real) real = (void* (*)(void*, size_t, int, int, int, off_t))dlsym(RTLD_NEXT, "mmap");
  char path[4096];
  const char* refused = getenv("MMAP_REFUSED_UNDER");
  if (refused && *refused && fd >= 0 && (flags & MAP_SHARED) && path_of(fd, path, sizeof path) &&
      strncmp(path, refused, strlen(refused)) == 0) {
    errno = ENODEV;
    return MAP_FAILED;
  }
  void* at = real(addr, len, prot, flags, fd, off);
  const char* how = getenv("MMAP_CHANGE");
  const char* target = getenv("MMAP_CHANGE_PATH");
  if (at != MAP_FAILED && how && target && (flags & MAP_POPULATE) && fd >= 0 &&
      !__atomic_exchange_n(&changed, 1, __ATOMIC_SEQ_CST)) {
    if (path_of(fd, path, sizeof path) && strcmp(path, target) == 0) change(target, how, off, len);
    else changed = 0;
  }
  return at;
}
void* mmap64(void* addr, size_t len, int prot, int flags, int fd, off_t off) __attribute__((alias("mmap")));
