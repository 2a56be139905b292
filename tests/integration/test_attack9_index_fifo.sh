# A sharded model directory whose shard index (model.safetensors.index.json) is swapped for a
# FIFO between tensorinit's check of the path (is it a regular file?) and its open of the path
# (a sync job, or anyone who can write the model volume, at the wrong moment). The swap is made
# deterministic by an LD_PRELOAD shim that renames a FIFO over the index at the first open of it
# (fopen, open: whichever tensorinit uses). Before the fix the open waited for a writer, every
# signal blocked: the start hung, SIGTERM changed nothing (SIGKILL at the test's bound: 137).
# Now the index is opened once (O_NONBLOCK) and checked through its descriptor: 65, one line.
source "$(dirname "$0")/lib.sh"
if ! command -v cc >/dev/null; then echo "skip - no cc for the shim"; finish; exit 0; fi
"$TENSORINIT" synth --size 2MiB --shards 2 --seed 5 "$TEST_TMP/m" 2>/dev/null
cat >"$TEST_TMP/swap.c" <<'C'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
/* At the first open of the shard index: a FIFO takes its name, then the real open runs. */
static void swap(const char* path) {
  static int done;
  if (done || !path || !strstr(path, "model.safetensors.index.json")) return;
  done = 1;
  char fifo[4096];
  snprintf(fifo, sizeof fifo, "%s.fifo", path);
  if (mkfifo(fifo, 0644) == 0) rename(fifo, path);
}
FILE* fopen(const char* p, const char* m) { swap(p); FILE* (*r)(const char*, const char*) = dlsym(RTLD_NEXT, "fopen"); return r(p, m); }
FILE* fopen64(const char* p, const char* m) { swap(p); FILE* (*r)(const char*, const char*) = dlsym(RTLD_NEXT, "fopen64"); return r(p, m); }
int open(const char* p, int f, ...) {
  va_list a; va_start(a, f); int mode = va_arg(a, int); va_end(a);
  swap(p); int (*r)(const char*, int, ...) = dlsym(RTLD_NEXT, "open"); return r(p, f, mode);
}
int open64(const char* p, int f, ...) {
  va_list a; va_start(a, f); int mode = va_arg(a, int); va_end(a);
  swap(p); int (*r)(const char*, int, ...) = dlsym(RTLD_NEXT, "open64"); return r(p, f, mode);
}
C
cc -shared -fPIC -o "$TEST_TMP/swap.so" "$TEST_TMP/swap.c" -ldl
m=$(manifest a9-index-fifo "$TEST_TMP/m" "report: ''" "handoff: {mode: none}")
expect_exit 65 "the shard index swapped for a FIFO after the check: refused at once, not waited on" \
  timeout -k 5 60 env LD_PRELOAD="$TEST_TMP/swap.so" "$TENSORINIT" load -f "$m"
check "the shim swapped it" test -p "$TEST_TMP/m/model.safetensors.index.json"
check "one error line naming the index" \
  test "$(grep -c "^tensorinit: error: .*model.safetensors.index.json: not a regular file" "$TEST_TMP/stderr")" = 1
check "nothing left in /dev/shm" no_leftovers a9-index-fifo
rm -f /dev/shm/.tensorinit-a9-index-fifo* /dev/shm/tensorinit-a9-index-fifo*  # a killed hang's lock
finish
