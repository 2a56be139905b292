# Remote sources whose write-through copy cannot be trusted (docs/notes/attacker4.md):
# 1. target host, the cache commit fails after the reads (the final name is a directory): the
#    server was exec'd with TENSORINIT_MODEL_DIR naming the cache directory, which does not hold
#    the model (or holds an older, unrecorded copy). Exec now points it at the remote (as without
#    a cache); signal mode, which handed the directory out before staging, hands nothing off (74).
# 2. a remote that sends neither ETag nor Last-Modified: only the size pins it, so a rewrite during
#    the load would be staged and cached mixed. Such a file is never written to the cache (a warning
#    says what the load can and cannot see).
source "$(dirname "$0")/lib.sh"
mkdir -p "$TEST_TMP/www"
"$TENSORINIT" synth --size 1MiB --seed 7 "$TEST_TMP/www/one" 2>/dev/null
start_fault_server "$TEST_TMP/www"
port=$fault_port
url="http://127.0.0.1:$port/one/"
out=$TEST_TMP/server.out
remote_manifest() {  # remote_manifest NAME CACHE HANDOFF: a host load of /one/
  cat >"$TEST_TMP/$1.yaml" <<EOF
version: 1
model:
  name: $1
  cache: "$2"
  sources: [{type: http, url: "$url", retries: 1}]
stage: {target: host}
report: ''
handoff: $3
EOF
  echo "$TEST_TMP/$1.yaml"
}
exec_handoff="{mode: exec, command: [sh, -c, 'echo \"\$TENSORINIT_MODEL_DIR\" > $out']}"
signal_handoff="{mode: signal, start: early, command: [sh, -c, 'echo \"\$TENSORINIT_MODEL_DIR\" > $out; trap \"touch $out.usr1; exit 0\" USR1; while :; do sleep 0.05; done']}"
file=model.safetensors

# 1a. exec: the commit fails (rename over a directory); the load is good, MODEL_DIR is the remote.
mkdir -p "$TEST_TMP/cache/a4-dir/$file/x"
expect_exit 0 "exec, cache commit fails: the load goes on" "$TENSORINIT" run -f "$(remote_manifest a4-dir "$TEST_TMP/cache" "$exec_handoff")"
check "exec: TENSORINIT_MODEL_DIR is the remote, not the cache without the model" grep -qx "$url" "$out"
# 1b. signal mode: the server already holds the cache directory: nothing is handed off.
rm -f "$out" "$out.usr1"
mkdir -p "$TEST_TMP/cache/a4-sig/$file/x"
expect_exit 74 "signal, cache commit fails: refused" "$TENSORINIT" run -f "$(remote_manifest a4-sig "$TEST_TMP/cache" "$signal_handoff")"
check "signal: one error line naming model.cache" test "$(grep -c 'tensorinit: error: model.cache' "$TEST_TMP/stderr")" = 1
check "signal: the server was never told the weights are ready" test ! -e "$out.usr1"
check "signal: nothing left in /dev/shm" no_leftovers a4-sig
# 1c. Controls: a working cache is the server's directory; no cache: the remote, and no warning.
expect_exit 0 "exec, working cache" "$TENSORINIT" run -f "$(remote_manifest a4-ok "$TEST_TMP/cache" "$exec_handoff")"
check "working cache: TENSORINIT_MODEL_DIR is the cache" grep -qx "$TEST_TMP/cache/a4-ok" "$out"
rm -f "$out" "$out.usr1"
expect_exit 0 "signal, no cache (the server exits 0 on the signal)" "$TENSORINIT" run -f "$(remote_manifest a4-none "" "$signal_handoff")"
check "no cache: the server was signalled, with the remote as its directory" grep -qx "$url" "$out"
check "no cache: signalled" test -e "$out.usr1"
check "no cache: no model.cache warning" not grep -q "model.cache" "$TEST_TMP/stderr"

# 2. Neither ETag nor Last-Modified: loaded, never cached.
echo "set etag none" >&"$fault_ctl"
echo "set last_modified none" >&"$fault_ctl"
expect_exit 0 "no validators: the load goes on" "$TENSORINIT" load -f "$(remote_manifest a4-bare "$TEST_TMP/cache" "{mode: none}")"
check "no validators: the warning says a change cannot be detected" grep -q "neither ETag nor Last-Modified" "$TEST_TMP/stderr"
check "no validators: no cache record (never trusted later)" test ! -e "$TEST_TMP/cache/a4-bare/$file.tensorinit.json"
check "no validators: no copy either" test ! -e "$TEST_TMP/cache/a4-bare/$file"
exec {fault_ctl}>&-
rm -f /dev/shm/tensorinit-a4-* /dev/shm/.tensorinit-a4-*
finish
