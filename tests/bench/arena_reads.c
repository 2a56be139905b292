// Probe for arena_reads.sh: reads FILE into a new host arena (an O_TMPFILE in SHM_DIR, sized to
// the file) one way, on THREADS readers pulling REQUEST-byte reads off one cursor, and prints
// {"bytes": N, "seconds": S, "cpu": C} (S: from the arena's creation to the last read's end;
// closing the arena, which frees its pages, is not counted, as tensorinit's stage time does not
// count it; C: user + system CPU seconds of the process over the same span).
//
//   arena_reads MODE FILE SHM_DIR REQUEST THREADS [AHEAD] [SHIFT]
// MODE:
//   buf-pwrite   O_DIRECT into a private buffer per reader, pwrite into the arena (the read
//                controller's "direct" candidates today)
//   dio-map      O_DIRECT straight into a MAP_SHARED mapping of the arena: the device writes the
//                tmpfs pages, which the reads fault in (allocate + zero) as they pin them
//   dio-falloc   dio-map, with a helper thread fallocate()ing the arena AHEAD bytes ahead of the
//                readers' cursor
//   dio-populate dio-map, with a helper thread MADV_POPULATE_WRITE-ing AHEAD bytes ahead
//   splice       buffered splice file -> pipe -> arena (the controller's page-cache candidate)
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
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

static const char* mode;
static int fd_direct, fd_buffered, arena;
static uint64_t size, request, ahead, shift;
static unsigned char* map;
static _Atomic uint64_t cursor;
static _Atomic int done_readers;
static unsigned threads;

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

static void pread_all(int fd, unsigned char* to, uint64_t len, uint64_t at) {
  while (len > 0) {
    ssize_t n = pread(fd, to, len, (off_t)at);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) die("pread");
    if (n == 0) break;  // the file's end: the rest of the arena stays zeros
    to += n, len -= (uint64_t)n, at += (uint64_t)n;
  }
}

static void* reader(void* arg) {
  (void)arg;
  unsigned char* buffer = NULL;
  int pipefd[2] = {-1, -1};
  if (!strcmp(mode, "buf-pwrite") && posix_memalign((void**)&buffer, 4096, request)) die("posix_memalign");
  if (!strcmp(mode, "splice")) {
    if (pipe(pipefd)) die("pipe");
    fcntl(pipefd[1], F_SETPIPE_SZ, 1 << 20);
  }
  for (;;) {
    uint64_t at = atomic_fetch_add(&cursor, request);
    if (at >= size) break;
    uint64_t len = size - at < request ? size - at : request;
    uint64_t aligned = (len + 4095) / 4096 * 4096;  // O_DIRECT reads whole blocks past the end
    if (!strcmp(mode, "buf-pwrite")) {
      pread_all(fd_direct, buffer, aligned, at);
      for (uint64_t w = 0; w < len;) {
        ssize_t n = pwrite(arena, buffer + w, len - w, (off_t)(at + w));
        if (n <= 0) die("pwrite");
        w += (uint64_t)n;
      }
    } else if (!strcmp(mode, "splice")) {
      loff_t in = (loff_t)at, out = (loff_t)at;
      for (uint64_t left = len; left > 0;) {
        ssize_t n = splice(fd_buffered, &in, pipefd[1], NULL, left < (1 << 20) ? left : (1 << 20), SPLICE_F_MOVE);
        if (n <= 0) die("splice in");
        for (ssize_t m = 0; m < n;) {
          ssize_t k = splice(pipefd[0], NULL, arena, &out, (size_t)(n - m), SPLICE_F_MOVE);
          if (k <= 0) die("splice out");
          m += k;
        }
        left -= (uint64_t)n;
      }
    } else {  // dio-*: the device writes the arena's pages
      uint64_t dest = at + shift, down = dest / 4096 * 4096;
      if (aligned > len && at + aligned > size) {  // the tail: a short buffered read, no past-end write
        pread_all(fd_buffered, map + dest, len, at);
        continue;
      }
      pread_all(fd_direct, map + down, aligned, at);
      if (down != dest) memmove(map + dest, map + down, len);
    }
  }
  atomic_fetch_add(&done_readers, 1);
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
    if (!strcmp(mode, "dio-falloc")) {
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
    fprintf(stderr, "usage: arena_reads MODE FILE SHM_DIR REQUEST THREADS [AHEAD] [SHIFT]\n");
    return 2;
  }
  mode = argv[1];
  request = strtoull(argv[4], NULL, 0);
  threads = (unsigned)atoi(argv[5]);
  ahead = argc > 6 ? strtoull(argv[6], NULL, 0) : 64ull << 20;
  shift = argc > 7 ? strtoull(argv[7], NULL, 0) : 0;
  fd_buffered = open(argv[2], O_RDONLY);
  fd_direct = open(argv[2], O_RDONLY | O_DIRECT);
  if (fd_buffered < 0 || fd_direct < 0) die(argv[2]);
  struct stat st;
  if (fstat(fd_buffered, &st)) die("fstat");
  size = (uint64_t)st.st_size;
  const double start = now();
  arena = open(argv[3], O_TMPFILE | O_RDWR, 0600);
  if (arena < 0) die(argv[3]);
  if (ftruncate(arena, (off_t)(size + shift + 4096))) die("ftruncate");
  if (!strncmp(mode, "dio-", 4)) {
    map = mmap(NULL, size + shift + 4096, PROT_READ | PROT_WRITE, MAP_SHARED, arena, 0);
    if (map == MAP_FAILED) die("mmap");
  }
  pthread_t helper, workers[256];
  const int helped = !strcmp(mode, "dio-falloc") || !strcmp(mode, "dio-populate");
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
