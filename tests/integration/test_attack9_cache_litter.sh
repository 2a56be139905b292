# model.cache: a crash while a cached file's record is written (between creating the record's
# temporary and the rename; simulated: an LD_PRELOAD shim faults in that renameat) leaves
# `<file>.tensorinit.json.<16 hex>.tmp` in the cache directory. The file is not trusted (no
# record) and the next start fills it again, but the temporary stayed there for good (litter on
# the volume at every such crash). Now the holder of the file's fill lock removes it, as it
# removes dead replicas' partials (only the lock's holder writes that record).
source "$(dirname "$0")/lib.sh"
if ! command -v cc >/dev/null; then echo "skip - no cc for the shim"; finish; exit 0; fi
mkdir -p "$TEST_TMP/www"
"$TENSORINIT" synth --size 1MiB --seed 7 "$TEST_TMP/www/one" 2>/dev/null
start_fault_server "$TEST_TMP/www"
port=$fault_port
cat >"$TEST_TMP/m.yaml" <<YAML
version: 1
model:
  name: a9-cache-litter
  cache: $TEST_TMP/cache
  sources: [{type: http, url: "http://127.0.0.1:$port/one/", retries: 1}]
report: ''
handoff: {mode: none}
YAML
cat >"$TEST_TMP/crash.c" <<'C'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <string.h>
/* Faults (a real SIGSEGV) when a cache record is renamed into place. */
int renameat(int fd, const char* from, int tofd, const char* to) {
  if (strstr(to, ".safetensors.tensorinit.json")) *(volatile int*)0 = 0;
  int (*real)(int, const char*, int, const char*) = (int (*)(int, const char*, int, const char*))dlsym(RTLD_NEXT, "renameat");
  return real(fd, from, tofd, to);
}
C
cc -shared -fPIC -o "$TEST_TMP/crash.so" "$TEST_TMP/crash.c" -ldl
dir=$TEST_TMP/cache/a9-cache-litter
rm -rf "$TEST_TMP/cache"
code=0
{ (ulimit -c 0 && LD_PRELOAD="$TEST_TMP/crash.so" "$TENSORINIT" load -f "$TEST_TMP/m.yaml") >/dev/null 2>&1 || code=$?; } 2>/dev/null
check "the shim crashed tensorinit while it wrote the record (exit $code)" test "$code" = 139
temps() { ls "$dir" | grep -E '^model\.safetensors\.tensorinit\.json\.[0-9a-f]{16}\.tmp$' || true; }
check "the crash left the record's temporary ($(temps))" test -n "$(temps)"
expect_exit 0 "the next start fills the file again" "$TENSORINIT" load -f "$TEST_TMP/m.yaml"
check "the record is there" test -f "$dir/model.safetensors.tensorinit.json"
check "the dead writer's temporary is gone ($(ls "$dir" | tr '\n' ' '))" test -z "$(temps)"
exec {fault_ctl}>&-
rm -f /dev/shm/tensorinit-a9-cache-litter* /dev/shm/.tensorinit-a9-cache-litter*
finish
