# tensorinit's memory holds what the manifest gives it (an S3 secret_access_key or session token,
# model.key or model.passphrase, URL userinfo), also when written in the manifest rather than
# passed in the environment (which the server gets anyway). Before the fix tensorinit-full was an
# ordinary dumpable process:
# 1. a server running under the same non-root uid (a pod's runAsUser: tensorinit and the server
#    share it) read the secret out of /proc/<tensorinit>/mem (no Yama here; its ptrace_scope 1
#    would stop this, not 0): "found";
# 2. a crash of tensorinit (simulated: an LD_PRELOAD shim faults when the tensor table is renamed
#    into place) wrote a core file holding the manifest's text, secret included, wherever
#    core_pattern says (here: `core` in the working directory, e.g. a persistent volume).
# Now tensorinit-full makes itself not dumpable (PR_SET_DUMPABLE 0) before anything else runs:
# /proc/PID/mem and a core dump are refused; the server, exec'd, is dumpable as before.
source "$(dirname "$0")/lib.sh"
MARK=zq8SeCrEt8qz
model=$TEST_TMP/model
"$TENSORINIT" synth --size 1MiB --seed 8 "$model" 2>/dev/null
shm=$TEST_TMP/shm
mkdir -p "$shm" && chmod 1777 "$shm"
chmod -R a+rX "$TEST_TMP"
d=$TEST_TMP
while [ "$d" != / ]; do [ -x "$d" ] && [ -r "$d" ] || chmod a+rx "$d"; d=$(dirname "$d"); done
s3="    - {type: s3, url: \"s3://bucket/p/\", endpoint: \"http://127.0.0.1:9\", region: us-east-1, access_key_id: AKIDA8, secret_access_key: \"sk-$MARK\"}"

# 1. The server, as the same non-root uid, reads tensorinit's memory.
cat >"$TEST_TMP/peek.py" <<'PY'
import os, re, sys
marker = sys.argv[1].encode()
ppid = os.getppid()
try:
    maps = open(f"/proc/{ppid}/maps").read().splitlines()
    mem = open(f"/proc/{ppid}/mem", "rb", 0)
except OSError as e:
    print(f"refused: {e.strerror}"); sys.exit(0)
for line in maps:
    m = re.match(r"([0-9a-f]+)-([0-9a-f]+) r", line)
    if not m: continue
    lo, hi = int(m.group(1), 16), int(m.group(2), 16)
    try:
        mem.seek(lo); data = mem.read(hi - lo)
    except (OSError, ValueError, OverflowError):
        continue
    if marker in data:
        print("found"); sys.exit(0)
print("not found")
PY
chmod 644 "$TEST_TMP/peek.py"
m=$(manifest a8-peek "$model" "$s3" "report: ''" "handoff: {mode: signal, command: [python3, \"$TEST_TMP/peek.py\", $MARK]}")
chmod 644 "$m"
if command -v setpriv >/dev/null && [ "$(id -u)" = 0 ]; then
  expect_exit 0 "signal mode as uid 65534, the server (same uid) looks into tensorinit's memory" \
    env TENSORINIT_SHM_DIR="$shm" setpriv --reuid 65534 --regid 65534 --clear-groups "$TENSORINIT" run -f "$m"
  check "the server could not read tensorinit's memory (got: $(cat "$TEST_TMP/stdout"))" \
    grep -q "^refused" "$TEST_TMP/stdout"
  check "nothing left in the shm dir" test -z "$(ls -A "$shm")"
else
  echo "skip - not root or no setpriv: the same-uid check needs both"
fi

# 2. A crash writes no core file with the secret in it.
cat >"$TEST_TMP/crash.c" <<'C'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <string.h>
/* Faults (a real SIGSEGV, taken even with every signal blocked) when the tensor table is renamed. */
int renameat(int fd, const char* from, int tofd, const char* to) {
  if (strstr(to, "tensorinit-a8-crash.json")) *(volatile int*)0 = 0;
  int (*real)(int, const char*, int, const char*) = (int (*)(int, const char*, int, const char*))dlsym(RTLD_NEXT, "renameat");
  return real(fd, from, tofd, to);
}
C
pattern=$(cat /proc/sys/kernel/core_pattern 2>/dev/null || echo "|")
if [ "${pattern#|}" = "$pattern" ] && [ "${pattern#/}" = "$pattern" ] && command -v cc >/dev/null; then
  cc -shared -fPIC -o "$TEST_TMP/crash.so" "$TEST_TMP/crash.c" -ldl
  mkdir -p "$TEST_TMP/cwd"
  m=$(manifest a8-crash "$model" "$s3" "report: ''" "handoff: {mode: none}")
  code=0
  (cd "$TEST_TMP/cwd" && ulimit -c unlimited && TENSORINIT_SHM_DIR="$shm" LD_PRELOAD="$TEST_TMP/crash.so" \
    "$TENSORINIT" load -f "$m") >/dev/null 2>&1 || code=$?
  check "the shim crashed tensorinit (SIGSEGV: exit $code)" test "$code" = 139
  cores=$(ls "$TEST_TMP/cwd")
  check "no core file holds the secret (files: ${cores:-none})" \
    not grep -rqa "$MARK" "$TEST_TMP/cwd"
else
  echo "skip - core_pattern is '$pattern' (a pipe or an absolute path) or no cc: the crash check needs cores in the working directory"
fi
rm -rf "$TEST_TMP/cwd"
finish
