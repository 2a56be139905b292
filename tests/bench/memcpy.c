// memcpy bandwidth baseline for bench.sh: copies a buffer of N GiB (default 1) into another,
// both pre-faulted, 5 times; prints {"bytes": N, "seconds": median} (bytes copied per run).
// Built on the fly by bench.sh with `cc -O2`.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return (x > y) - (x < y);
}

int main(int argc, char** argv) {
  double gib = argc > 1 ? atof(argv[1]) : 1.0;
  size_t n = (size_t)(gib * (double)(1UL << 30));
  char* src = malloc(n);
  char* dst = malloc(n);
  if (!src || !dst) {
    fprintf(stderr, "memcpy: cannot allocate 2 x %zu bytes\n", n);
    return 1;
  }
  memset(src, 0x5a, n);  // fault both in: the runs measure copying, not page faults
  memset(dst, 0, n);
  enum { kRuns = 5 };
  double secs[kRuns];
  for (int i = 0; i < kRuns; ++i) {
    double t0 = now();
    memcpy(dst, src, n);
    secs[i] = now() - t0;
    src[i] ^= dst[n - 1 - i];  // keep the copies observable
  }
  qsort(secs, kRuns, sizeof secs[0], cmp);
  printf("{\"bytes\": %zu, \"seconds\": %.6f, \"check\": %d}\n", n, secs[kRuns / 2], src[0] & 1);
  free(src);
  free(dst);
  return 0;
}
