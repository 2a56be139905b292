# Several instances, each PID 1 in its own pid namespace (as every container's init is), sharing
# one shm dir: a model name has one owner; the second is refused with 69 naming the holder and
# touches nothing of the first; different names load side by side; a kill -9 during staging
# leaves nothing a later start would trust; a failed exec cleans up; signal mode stops promptly
# during a stalled remote plan. Synchronised on files, FIFOs and the fault server's log.
source "$(dirname "$0")/lib.sh"
if ! unshare --pid --fork --mount-proc true 2>/dev/null; then
  echo "skip: unshare --pid needs root (or user namespaces)"; exit 0
fi
shm=$TEST_TMP/shm
mkdir -p "$shm"
export TENSORINIT_SHM_DIR=$shm
pid1() { unshare --pid --fork --mount-proc "$@"; }
# Same size and seed-less shapes: the two models have the same tensor names, different bytes.
"$TENSORINIT" synth --size 4MiB --seed 1 "$TEST_TMP/a" 2>/dev/null
"$TENSORINIT" synth --size 4MiB --seed 2 "$TEST_TMP/b" 2>/dev/null
verify() { TENSORINIT_MODEL_DIR=$2 $VERIFY --table "$1" >/dev/null; }
wait_for() {  # wait_for FILE: an event, bounded only against a hang
  local i
  for i in $(seq 1200); do [ -e "$1" ] && return 0; sleep 0.1; done
  return 1
}
one_error_line() { [ "$(grep -c '^tensorinit: error:' "$TEST_TMP/stderr")" = 1 ]; }
shm_has_only() {  # shm_has_only [NAME...]: the shm dir holds exactly these entries
  [ "$(ls -A "$shm" | sort | tr '\n' ' ')" = "$(printf '%s\n' "$@" | sed '/^$/d' | sort | tr '\n' ' ')" ]
}
manifest_for() {  # manifest_for FILE NAME MODEL_DIR [extra lines...]
  local file=$1 name=$2 dir=$3; shift 3
  { echo "version: 1"; echo "model: {name: $name, sources: [{type: image, path: \"$dir\"}]}"
    for line in "$@"; do echo "$line"; done; } >"$TEST_TMP/$file.yaml"
  echo "$TEST_TMP/$file.yaml"
}

# 1. A signal-mode server on model A holds the name "shared"; the refused ones touch nothing.
mA=$(manifest_for a shared "$TEST_TMP/a" "handoff: {mode: signal, start: after-load}" "report: $TEST_TMP/a.report.json")
mB=$(manifest_for b shared "$TEST_TMP/b" "report: $TEST_TMP/b.report.json")
mB_signal=$(manifest_for b-signal shared "$TEST_TMP/b" "handoff: {mode: signal, start: early}" "report: ''")
mkfifo "$TEST_TMP/a.release"
pid1 "$TENSORINIT" run -f "$mA" -- sh -c "$VERIFY && touch '$TEST_TMP/a.ready' && cat '$TEST_TMP/a.release'" \
  2>"$TEST_TMP/a.stderr" &
a_pid=$!
check "A: its server verified the table and is serving" wait_for "$TEST_TMP/a.ready"
expect_exit 69 "B: load of the same name beside A's server is refused" pid1 "$TENSORINIT" load -f "$mB"
check "B: one error line" one_error_line
check "B: the error names the holder (pid 1 in its namespace, host, start) and the fix" \
  grep -q "in use by another tensorinit.*host .*pid 1, started .*give each instance its own model.name" "$TEST_TMP/stderr"
check "B: the report says so (exit 69)" python3 -c "
import json; r = json.load(open('$TEST_TMP/b.report.json')); assert not r['ok'] and r['exit_code'] == 69, r"
expect_exit 69 "B: a signal-mode run of the same name is refused" pid1 "$TENSORINIT" run -f "$mB_signal" -- \
  touch "$TEST_TMP/b.started"
check "B: its server never started" not test -e "$TEST_TMP/b.started"
check "A: the table still holds A's bytes, all of them" verify "$shm/tensorinit-shared.json" "$TEST_TMP/a"
check "A: arena, table and socket are still there" \
  test -e "$shm/tensorinit-shared-0" -a -e "$shm/tensorinit-shared.json" -a -S "$shm/tensorinit-shared.sock"
check "A: the ready socket answers with A's table" python3 - "$shm/tensorinit-shared.sock" "$shm/tensorinit-shared.json" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
data = b""
while chunk := s.recv(65536): data += chunk
head, _, body = data.partition(b"\n")
assert head.split()[0] == b"ready" and body == open(sys.argv[2], "rb").read(), head
PY
echo >"$TEST_TMP/a.release"
got=0; wait $a_pid || got=$?
check "A: exits 0 with its server" test "$got" = 0
check "A: nothing left in the shm dir" shm_has_only
expect_exit 0 "B: the name is free now" pid1 "$TENSORINIT" load -f "$mB" --keep
check "B: its table holds B's bytes" verify "$shm/tensorinit-shared.json" "$TEST_TMP/b"
rm -f "$shm"/tensorinit-shared*

# 1b. What an earlier owner left published (load --keep: model A) is withdrawn when the next owner
# takes the name: its server, started early, finds the new load's table (model B) or none.
mk1=$(manifest_for kept shared "$TEST_TMP/a" "report: ''")
expect_exit 0 "kept: model A left published under 'shared'" pid1 "$TENSORINIT" load -f "$mk1" --keep
mB_early=$(manifest_for b-early shared "$TEST_TMP/b" "handoff: {mode: signal, start: early}" "report: ''" \
  "stage: {readers: 1, chunk_size: 64KiB}")
# The server looks at once (a shell, no interpreter to start): A's table names A's directory.
expect_exit 0 "kept: a server started early never sees the old model's table" pid1 "$TENSORINIT" run -f "$mB_early" -- \
  sh -c "! grep -qs '\"$TEST_TMP/a\"' \"\$TENSORINIT_TABLE\""
rm -f "$shm"/tensorinit-shared*

# 2. Different names side by side, both PID 1, both byte-exact.
m1=$(manifest_for n1 name-one "$TEST_TMP/a" "report: ''")
m2=$(manifest_for n2 name-one-0 "$TEST_TMP/b" "report: ''")  # "name-one" is a prefix of it
pid1 "$TENSORINIT" load -f "$m1" --keep 2>"$TEST_TMP/n1.stderr" & p1=$!
pid1 "$TENSORINIT" load -f "$m2" --keep 2>"$TEST_TMP/n2.stderr" & p2=$!
r1=0; wait $p1 || r1=$?; r2=0; wait $p2 || r2=$?
check "two names at once: both exit 0 ($r1, $r2)" test "$r1$r2" = 00
check "name-one holds A's bytes" verify "$shm/tensorinit-name-one.json" "$TEST_TMP/a"
check "name-one-0 holds B's bytes" verify "$shm/tensorinit-name-one-0.json" "$TEST_TMP/b"
check "no lock files left by either" shm_has_only tensorinit-name-one-0 tensorinit-name-one.json \
  tensorinit-name-one-0-0 tensorinit-name-one-0.json
rm -f "$shm"/tensorinit-name-one*

# 3. A failed exec (not PID 1: someone else is the init) leaves nothing, and reports it.
mx=$(manifest_for x exec-fail "$TEST_TMP/a" "handoff: {mode: exec}" "report: $TEST_TMP/x.report.json")
expect_exit 127 "exec of a missing command: 127" "$TENSORINIT" run -f "$mx" -- /nonexistent/server
check "failed exec: one error line" one_error_line
check "failed exec: nothing left in the shm dir" shm_has_only
check "failed exec: the report says so (exit 127)" python3 -c "
import json; r = json.load(open('$TEST_TMP/x.report.json')); assert not r['ok'] and r['exit_code'] == 127, r"

# 4. Exec mode: the server holds the name as long as it lives (the lock travels through exec).
me=$(manifest_for e exec-held "$TEST_TMP/a" "handoff: {mode: exec}" "report: ''")
mkfifo "$TEST_TMP/e.release"
"$TENSORINIT" run -f "$me" -- sh -c "$VERIFY && touch '$TEST_TMP/e.ready' && cat '$TEST_TMP/e.release'" &
e_pid=$!
check "exec: the server verified the table" wait_for "$TEST_TMP/e.ready"
me2=$(manifest_for e2 exec-held "$TEST_TMP/b" "report: ''")
expect_exit 69 "exec: another load of the name is refused while the server lives" pid1 "$TENSORINIT" load -f "$me2"
echo >"$TEST_TMP/e.release"
got=0; wait $e_pid || got=$?
check "exec: the server exits 0" test "$got" = 0
expect_exit 0 "exec: the name is free once the server is gone" pid1 "$TENSORINIT" load -f "$me2"
rm -f "$shm"/tensorinit-exec-held* "$shm"/.tensorinit-exec-held.lock

# 5 and 6 need a server that stalls: the fault server on loopback.
port_file=$TEST_TMP/fault.ports
mkfifo "$TEST_TMP/fault.in"
python3 "$TESTS_DIR/tools/fault_server.py" --stdin-control "$TEST_TMP/b" <"$TEST_TMP/fault.in" >"$port_file" &
fault_pid=$!
exec 7>"$TEST_TMP/fault.in"
trap 'exec 7>&-; kill $fault_pid 2>/dev/null; wait $fault_pid 2>/dev/null || true' EXIT
for i in $(seq 600); do [ "$(wc -l <"$port_file")" -ge 2 ] && break; sleep 0.1; done
port=$(head -1 "$port_file")
control() { python3 -c "import sys, urllib.request, urllib.parse; print(urllib.request.urlopen('http://127.0.0.1:$port/_control/' + urllib.parse.quote(sys.argv[1])).read().decode())" "$1"; }
requests_for() { control log | python3 -c "import json, sys; print(sum(1 for r in json.load(sys.stdin) if r['path'].endswith('$1')))"; }
remote_manifest() {  # remote_manifest FILE NAME [extra lines...]
  local file=$1 name=$2; shift 2
  { echo "version: 1"
    echo "model: {name: $name, sources: [{type: http, url: \"http://127.0.0.1:$port/\", retries: 5, stall_timeout: 600s}]}"
    for line in "$@"; do echo "$line"; done; } >"$TEST_TMP/$file.yaml"
  echo "$TEST_TMP/$file.yaml"
}
wait_requests() {  # wait_requests PATH N: the fault server has seen at least N requests for PATH
  local i
  for i in $(seq 1200); do [ "$(requests_for "$1")" -ge "$2" ] && return 0; sleep 0.1; done
  return 1
}

# 5. kill -9 while staging into the arena: nothing is left that a later start would trust.
mk=$(remote_manifest k killed "stage: {readers: 1, chunk_size: 1MiB}" "report: ''")
control clear >/dev/null
expect_exit 0 "remote: a plain load works" pid1 "$TENSORINIT" load -f "$mk"
staged_requests=$(requests_for model.safetensors)
control clear >/dev/null
pid1 "$TENSORINIT" plan -f "$mk" >/dev/null 2>&1 || true
plan_requests=$(requests_for model.safetensors)
# The plan's requests go through; the first one of staging stalls for 10 minutes after 1 byte.
control clear >/dev/null
control "fault /model.safetensors stall after=1 seconds=600 times=0 skip=$plan_requests" >/dev/null
unshare --pid --fork --mount-proc "$TENSORINIT" load -f "$mk" 2>"$TEST_TMP/k.stderr" &
k_unshare=$!  # unshare itself (no subshell between): its only child is tensorinit, PID 1 inside
check "kill -9: staging began (plan $plan_requests requests, a load $staged_requests)" \
  wait_requests model.safetensors $((plan_requests + 1))
k_pid=$(cat /proc/$k_unshare/task/$k_unshare/children | tr -d ' ')
arena_open() { ls -l /proc/$k_pid/fd 2>/dev/null | grep -- "$shm/" | grep -vq '\.lock$'; }  # not the name lock
for i in $(seq 1200); do arena_open && break; sleep 0.1; done
check "kill -9: the arena was open in the shm dir" arena_open
kill -9 "$k_pid"
wait $k_unshare 2>/dev/null || true
check "kill -9: no arena, table or partial left (an unlocked lock file at most)" \
  sh -c "! ls -A '$shm' | grep -v '^.tensorinit-killed.lock\$' | grep -q ."
control clear >/dev/null
expect_exit 0 "kill -9: the next PID 1 of that name loads" pid1 "$TENSORINIT" load -f "$mk" --keep
check "kill -9: and its table holds the model's bytes" verify "$shm/tensorinit-killed.json" "$TEST_TMP/b"
rm -f "$shm"/tensorinit-killed*
check "kill -9: nothing left after the next load" shm_has_only

# 6. Signal mode, SIGTERM while a remote probe stalls: 143 at once (was 69 after the retries).
control clear >/dev/null
control "fault * stall after=0 seconds=600 times=0" >/dev/null
ms=$(remote_manifest s stalled "handoff: {mode: signal, start: early}" "report: $TEST_TMP/s.report.json")
sed -i 's/retries: 5, stall_timeout: 600s/retries: 1, stall_timeout: 30s/' "$ms"
"$TENSORINIT" run -f "$ms" -- touch "$TEST_TMP/s.started" 2>"$TEST_TMP/stderr" &
s_pid=$!
check "signal mode: the plan is waiting on the stalled server" wait_requests "" 1
kill -TERM $s_pid
got=0; wait $s_pid || got=$?
check "signal mode: SIGTERM during the plan exits 143 (got $got)" test "$got" = 143
check "signal mode: one error line" one_error_line
check "signal mode: no server was started" not test -e "$TEST_TMP/s.started"
check "signal mode: the report says 143" python3 -c "
import json; r = json.load(open('$TEST_TMP/s.report.json')); assert not r['ok'] and r['exit_code'] == 143, r"
check "signal mode: nothing left in the shm dir" shm_has_only
# 7. Signal mode, SIGTERM while staging stalls (the server already started early): the reads opened
# by the plan stop too, at once (they kept the plan's stop token: 600 s of stall before).
control clear >/dev/null
mt=$(remote_manifest t stalling "stage: {readers: 1, chunk_size: 1MiB}" "handoff: {mode: signal, start: early}" "report: ''")
"$TENSORINIT" plan -f "$mt" >/dev/null 2>&1 || true
t_plan=$(requests_for model.safetensors)
control clear >/dev/null
control "fault /model.safetensors stall after=1 seconds=600 times=0 skip=$t_plan" >/dev/null
"$TENSORINIT" run -f "$mt" -- sh -c "touch '$TEST_TMP/t.started'; exec sleep 600" 2>"$TEST_TMP/stderr" &
t_pid=$!
check "signal mode: staging is waiting on the stalled server" wait_requests model.safetensors $((t_plan + 1))
for i in $(seq 600); do [ -e "$TEST_TMP/t.started" ] && break; sleep 0.1; done
kill -TERM $t_pid
timeout 120 tail --pid=$t_pid -f /dev/null || kill -9 $t_pid  # hung: fails below
got=0; wait $t_pid || got=$?
check "signal mode: SIGTERM while staging stalls ends the run (exit $got, the server's 143)" test "$got" = 143
check "signal mode: nothing left in the shm dir after the stalled staging" shm_has_only
control clear >/dev/null
finish
