# A crash while the tensor table is being written (between creating its temporary and the rename;
# simulated: an LD_PRELOAD shim faults in the table's renameat) leaves
# `<shm>/tensorinit-<model>.json.<16 hex>.tmp`. The next start with that name took the name lock
# and removed the arena and the table, not the temporary: litter in /dev/shm at every crash
# (attack8's leftover). Likewise the ready socket of a signal-mode instance that was killed
# (SIGKILL: `tensorinit-<model>.sock`, nobody listening) stayed until the next signal-mode start.
# Now the holder of the name lock removes both: no other instance writes that name's table or
# listens on its socket while the lock is held (stage/name_lock.hpp); another model's temporary
# (whose owner may be alive) is left alone.
source "$(dirname "$0")/lib.sh"
model=$TEST_TMP/model
"$TENSORINIT" synth --size 1MiB --seed 9 "$model" 2>/dev/null
shm=$TEST_TMP/shm
rm -rf "$shm" && mkdir -p "$shm"
m=$(manifest a9-litter "$model" "report: ''" "handoff: {mode: none}")
cat >"$TEST_TMP/crash.c" <<'C'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <string.h>
/* Faults (a real SIGSEGV, taken even with every signal blocked) when the tensor table is renamed. */
int renameat(int fd, const char* from, int tofd, const char* to) {
  if (strstr(to, "tensorinit-a9-litter.json")) *(volatile int*)0 = 0;
  int (*real)(int, const char*, int, const char*) = (int (*)(int, const char*, int, const char*))dlsym(RTLD_NEXT, "renameat");
  return real(fd, from, tofd, to);
}
C
if command -v cc >/dev/null && cc -shared -fPIC -o "$TEST_TMP/crash.so" "$TEST_TMP/crash.c" -ldl 2>/dev/null; then
  code=0
  { (ulimit -c 0 && TENSORINIT_SHM_DIR="$shm" LD_PRELOAD="$TEST_TMP/crash.so" "$TENSORINIT" load -f "$m") \
    >/dev/null 2>&1 || code=$?; } 2>/dev/null
  check "the shim crashed tensorinit while it wrote the table (exit $code)" test "$code" = 139
else
  echo "skip - no cc: the temporary is made by hand"
  echo '{"partial' >"$shm/tensorinit-a9-litter.json.0123456789abcdef.tmp"
fi
litter=$(cd "$shm" && ls | grep -E '^tensorinit-a9-litter\.json\.[0-9a-f]{16}\.tmp$' || true)
check "the crash left the table's temporary (${litter:-none})" test -n "$litter"
# A killed signal-mode owner's socket (bound, then the process gone: no listener).
python3 -c "import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])" "$shm/tensorinit-a9-litter.sock"
check "a stale ready socket is there" test -S "$shm/tensorinit-a9-litter.sock"
# Another model's temporary: its writer may be alive (it holds its own name, not ours).
other=tensorinit-a9-litter-b.json.fedcba9876543210.tmp
echo '{}' >"$shm/$other"
expect_exit 0 "the next start with that name loads" env TENSORINIT_SHM_DIR="$shm" "$TENSORINIT" load --keep -f "$m"
check "it removed the dead writer's temporary ($(ls "$shm" | tr '\n' ' '))" \
  not sh -c "ls '$shm' | grep -qE '^tensorinit-a9-litter\.json\.[0-9a-f]{16}\.tmp$'"
check "it removed the stale ready socket" test ! -e "$shm/tensorinit-a9-litter.sock"
check "another model's temporary is left alone" test -e "$shm/$other"
check "its table is there (load --keep)" test -e "$shm/tensorinit-a9-litter.json"
rm -rf "$shm"
finish
