// Probe for arena_reads.sh: reads FILE into a new host arena (an O_TMPFILE in SHM_DIR, sized to
// the file) one way, on THREADS readers pulling REQUEST-byte reads off one cursor, and prints
// {"bytes": N, "seconds": S, "cpu": C} (S: from the arena's creation to the last read's end;
// closing the arena, which frees its pages, is not counted, as tensorinit's stage time does not
// count it; C: user + system CPU seconds of the process over the same span).
//
//   arena_reads MODE FILE SHM_DIR REQUEST THREADS [AHEAD] [SHIFT] [LIMIT]
// LIMIT (bytes, default 0: the whole file): copy only the file's first LIMIT bytes (the sweep).
// MODE, the plain copies (reads.sh --sweep; a `direct-` prefix reads with O_DIRECT, a file's
// unaligned tail buffered):
//   buf-pwrite   O_DIRECT into a private buffer per reader, pwrite into the arena (the read
//                controller's "direct" candidates today; also spelled direct-pwrite)
//   pwrite       buffered pread into a private buffer per reader, pwrite into the arena
//   sendfile     sendfile(2) file -> arena (one call, the kernel's own pipe), per reader its own
//                open file description of the arena (sendfile writes at the file position)
//   copy-range   copy_file_range(2) file -> arena (refused across filesystems since 5.19: EXDEV)
//   anon         no arena: pread into anonymous memory (what safetensors' load_file lands in),
//                each page faulted (allocated + zeroed) by the read that fills it
//   dio-map      O_DIRECT straight into a MAP_SHARED mapping of the arena: the device writes the
//                tmpfs pages, which the reads fault in (allocate + zero) as they pin them
//   dio-falloc   dio-map, with a helper thread fallocate()ing the arena AHEAD bytes ahead of the
//                readers' cursor
//   dio-populate dio-map, with a helper thread MADV_POPULATE_WRITE-ing AHEAD bytes ahead
//   splice       buffered splice file -> pipe -> arena (the controller's page-cache candidate)
// and direct-pwrite, direct-splice, direct-sendfile, direct-anon. A `-serial` suffix (or
// ARENA_LOCK=1) makes the arena writes of pwrite and splice take turns on a mutex (HostSink's way:
// waiting readers sleep instead of spinning on tmpfs's inode lock in the kernel).
// SHIFT (bytes, default 0): the arena offset of file byte X is X + SHIFT. dio-* modes then read
// into the SHIFT-aligned-down address and memmove the request into place (the cost of a file
// whose tensors do not share the arena's offsets modulo the device's memory alignment). A cost
// probe only: the read also overwrites the SHIFT bytes before its range, so the arena is not
// byte-exact then (and no mode checks it).
// Built on the fly by arena_reads.sh with `cc -O2 -pthread`.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

static const char* mode;  // without its direct- prefix
static int direct;        // read with O_DIRECT
static int fd_direct, fd_buffered, arena;
static uint64_t size, request, ahead, shift;
static unsigned char* map;
static _Atomic uint64_t cursor;
static _Atomic int done_readers;
static unsigned threads;
static int serialise;  // ARENA_LOCK=1: one arena write at a time, readers sleep on a mutex
static pthread_mutex_t write_lock = PTHREAD_MUTEX_INITIALIZER;
static void lock(void) { if (serialise) pthread_mutex_lock(&write_lock); }
static void unlock(void) { if (serialise) pthread_mutex_unlock(&write_lock); }

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double cpu_seconds(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

static void die(const char* what) {
  fprintf(stderr, "arena_reads: %s: %s\n", what, strerror(errno));
  exit(1);
}

static int is(const char* m) { return !strcmp(mode, m); }

static void pread_all(int fd, unsigned char* to, uint64_t len, uint64_t at) {
  while (len > 0) {
    ssize_t n = pread(fd, to, len, (off_t)at);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) die("pread");
    if (n == 0) break;  // the file's end: the rest of the arena stays zeros
    to += n, len -= (uint64_t)n, at += (uint64_t)n;
  }
}

// [at, + len) of the file into `to`: O_DIRECT for whole blocks where asked, the tail buffered.
static void read_into(unsigned char* to, uint64_t len, uint64_t at) {
  const uint64_t body = direct ? len / 4096 * 4096 : 0;
  if (body) pread_all(fd_direct, to, body, at);
  if (len > body) pread_all(fd_buffered, to + body, len - body, at + body);
}

// The source descriptor for a kernel copy of [at, + len): O_DIRECT needs whole blocks.
static int source_for(uint64_t len) { return direct && len % 4096 == 0 ? fd_direct : fd_buffered; }

static void splice_range(int pipefd[2], uint64_t len, uint64_t at) {
  loff_t in = (loff_t)at, out = (loff_t)(at + shift);
  const int src = source_for(len);
  for (uint64_t left = len; left > 0;) {
    ssize_t n = splice(src, &in, pipefd[1], NULL, left < (1 << 20) ? left : (1 << 20), SPLICE_F_MOVE);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) die("splice in");
    lock();
    for (ssize_t m = 0; m < n;) {
      ssize_t k = splice(pipefd[0], NULL, arena, &out, (size_t)(n - m), SPLICE_F_MOVE);
      if (k <= 0) die("splice out");
      m += k;
    }
    unlock();
    left -= (uint64_t)n;
  }
}

static void kernel_copy(int out_fd, uint64_t len, uint64_t at) {
  loff_t in = (loff_t)at, out = (loff_t)(at + shift);
  const int src = source_for(len);
  if (is("sendfile") && lseek(out_fd, out, SEEK_SET) < 0) die("lseek");
  for (uint64_t left = len; left > 0;) {
    ssize_t n = is("sendfile") ? sendfile(out_fd, src, &in, left) : copy_file_range(src, &in, out_fd, &out, left, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) die(is("sendfile") ? "sendfile" : "copy_file_range");
    left -= (uint64_t)n;
  }
}

static void* reader(void* arg) {
  (void)arg;
  unsigned char* buffer = NULL;
  int pipefd[2] = {-1, -1}, out_fd = arena;
  if ((is("buf-pwrite") || is("pwrite")) && posix_memalign((void**)&buffer, 4096, request)) die("posix_memalign");
  if (is("splice")) {
    if (pipe(pipefd)) die("pipe");
    fcntl(pipefd[1], F_SETPIPE_SZ, 1 << 20);
  }
  if (is("sendfile")) {  // a file position of its own
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", arena);
    if ((out_fd = open(path, O_RDWR)) < 0) die(path);
  }
  for (;;) {
    uint64_t at = atomic_fetch_add(&cursor, request);
    if (at >= size) break;
    uint64_t len = size - at < request ? size - at : request;
    if (is("buf-pwrite") || is("pwrite")) {
      read_into(buffer, len, at);
      lock();
      for (uint64_t w = 0; w < len;) {
        ssize_t n = pwrite(arena, buffer + w, len - w, (off_t)(at + w));
        if (n <= 0) die("pwrite");
        w += (uint64_t)n;
      }
      unlock();
    } else if (is("splice")) {
      splice_range(pipefd, len, at);
    } else if (is("sendfile") || is("copy-range")) {
      kernel_copy(out_fd, len, at);
    } else if (is("anon")) {
      read_into(map + at, len, at);
    } else {  // dio-*: the device writes the arena's pages
      uint64_t aligned = (len + 4095) / 4096 * 4096, dest = at + shift, down = dest / 4096 * 4096;
      if (aligned > len && at + aligned > size) {  // the tail: a short buffered read, no past-end write
        pread_all(fd_buffered, map + dest, len, at);
        continue;
      }
      pread_all(fd_direct, map + down, aligned, at);
      if (down != dest) memmove(map + dest, map + down, len);
    }
  }
  atomic_fetch_add(&done_readers, 1);
  if (out_fd != arena) close(out_fd);
  free(buffer);
  return NULL;
}

// Keeps the arena's pages allocated `ahead` bytes past the readers' cursor, 2 MiB at a time.
static void* allocator(void* arg) {
  (void)arg;
  const uint64_t step = 2 << 20;
  for (uint64_t at = 0; at < size + shift && atomic_load(&done_readers) < (int)threads;) {
    uint64_t limit = atomic_load(&cursor) + ahead;
    if (at >= limit) {
      struct timespec ts = {0, 200000};
      nanosleep(&ts, NULL);
      continue;
    }
    uint64_t len = size + shift - at < step ? size + shift - at : step;
    if (is("dio-falloc")) {
      if (fallocate(arena, 0, (off_t)at, (off_t)len)) die("fallocate");
    } else if (madvise(map + at, len, MADV_POPULATE_WRITE)) {
      die("madvise(MADV_POPULATE_WRITE)");
    }
    at += len;
  }
  return NULL;
}

int main(int argc, char** argv) {
  if (argc < 6) {
    fprintf(stderr, "usage: arena_reads MODE FILE SHM_DIR REQUEST THREADS [AHEAD] [SHIFT] [LIMIT]\n");
    return 2;
  }
  static char name[64];
  snprintf(name, sizeof name, "%s", argv[1]);
  const size_t n = strlen(name);
  serialise = (getenv("ARENA_LOCK") && atoi(getenv("ARENA_LOCK"))) || (n > 7 && !strcmp(name + n - 7, "-serial"));
  if (n > 7 && !strcmp(name + n - 7, "-serial")) name[n - 7] = 0;
  direct = !strncmp(name, "direct-", 7);
  mode = direct ? name + 7 : name;
  if (is("buf-pwrite")) direct = 1;
  request = strtoull(argv[4], NULL, 0);
  threads = (unsigned)atoi(argv[5]);
  ahead = argc > 6 ? strtoull(argv[6], NULL, 0) : 64ull << 20;
  shift = argc > 7 ? strtoull(argv[7], NULL, 0) : 0;
  const uint64_t limit = argc > 8 ? strtoull(argv[8], NULL, 0) : 0;
  fd_buffered = open(argv[2], O_RDONLY);
  fd_direct = open(argv[2], O_RDONLY | O_DIRECT);
  if (fd_buffered < 0 || fd_direct < 0) die(argv[2]);
  struct stat st;
  if (fstat(fd_buffered, &st)) die("fstat");
  size = limit && limit < (uint64_t)st.st_size ? limit : (uint64_t)st.st_size;
  const double start = now();
  if (is("anon")) {
    map = mmap(NULL, size + 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED) die("mmap");
  } else {
    arena = open(argv[3], O_TMPFILE | O_RDWR, 0600);
    if (arena < 0) die(argv[3]);
    if (ftruncate(arena, (off_t)(size + shift + 4096))) die("ftruncate");
  }
  if (!strncmp(mode, "dio-", 4)) {
    map = mmap(NULL, size + shift + 4096, PROT_READ | PROT_WRITE, MAP_SHARED, arena, 0);
    if (map == MAP_FAILED) die("mmap");
  }
  pthread_t helper, workers[256];
  const int helped = is("dio-falloc") || is("dio-populate");
  if (helped && pthread_create(&helper, NULL, allocator, NULL)) die("pthread_create");
  for (unsigned i = 0; i < threads && i < 256; ++i)
    if (pthread_create(&workers[i], NULL, reader, NULL)) die("pthread_create");
  for (unsigned i = 0; i < threads && i < 256; ++i) pthread_join(workers[i], NULL);
  const double end = now();
  if (helped) pthread_join(helper, NULL);
  const double cpu = cpu_seconds();
  printf("{\"bytes\": %llu, \"seconds\": %.6f, \"cpu\": %.3f}\n", (unsigned long long)size, end - start, cpu);
  return 0;
}
