#!/usr/bin/env bash
# The signal handoff end to end, tensorinit as PID 1: the server (examples/tiny-server, a real
# Python process) starts at once, blocks on $TENSORINIT_SOCKET, and compares every staged
# tensor's bytes with the fixture; a corrupt model is refused (exit 65) before any server starts,
# leaving nothing in /dev/shm.
set -uo pipefail
: "${TENSORINIT:?}" "${FIXTURES:?}" "${TESTS_DIR:?}"
TEST_TMP=${TEST_TMP:-$(mktemp -d)}
rm -rf "$TEST_TMP" && mkdir -p "$TEST_TMP"
T=$TEST_TMP
ROOT=$(cd "$TESTS_DIR/.." && pwd)
SERVER=$ROOT/examples/tiny-server/server.py
failures=0
pass() { echo "ok   $*"; }
fail() { echo "FAIL $*"; failures=$((failures + 1)); }
expect() { if [[ "$2" == "$3" ]]; then pass "$1"; else fail "$1: want [$2], got [$3]"; fi; }

manifest() {  # manifest NAME MODEL START
  cat > "$T/$1.yaml" <<YAML
version: 1
model:
  name: $1
  sources:
    - type: image
      path: $2
stage:
  target: host
handoff:
  mode: signal
  start: $3
  grace: 2s
  command: [python3, $SERVER, --check, $FIXTURES/tiny-f16.safetensors]
report: $T/$1-report.json
YAML
}
shm_left() { ls /dev/shm | grep -c "^tensorinit-$1" ; }

manifest handoff-early "$FIXTURES/tiny-f16.safetensors" early
out=$(unshare -fp --mount-proc "$TENSORINIT" run -f "$T/handoff-early.yaml" 2>"$T/err"); code=$?
expect "start early: the server verified every tensor and exited 0" 0 $code
expect "start early: server's report" "checked 10 tensors: 0 differ, 0 unexpected" "$out"
expect "start early: arenas removed after the server exited" 0 "$(shm_left handoff-early)"

manifest handoff-late "$FIXTURES/tiny-f16.safetensors" after-load
out=$(unshare -fp --mount-proc "$TENSORINIT" run -f "$T/handoff-late.yaml" 2>"$T/err"); code=$?
expect "after-load: the server verified every tensor" "0 checked 10 tensors: 0 differ, 0 unexpected" "$code $out"

# A corrupt model (its header is not JSON): found while deciding, before any server starts.
printf '\x02\x00\x00\x00\x00\x00\x00\x00{x' > "$T/corrupt.safetensors"
manifest handoff-bad "$T/corrupt.safetensors" early
out=$(unshare -fp --mount-proc "$TENSORINIT" run -f "$T/handoff-bad.yaml" 2>"$T/err"); code=$?
expect "corrupt weights: exit 65" 65 $code
expect "corrupt weights: no server was started" "" "$out"
grep -q "^tensorinit: error: .*corrupt.safetensors" "$T/err" && pass "one error line names the file" \
  || fail "stderr: $(cat "$T/err")"
expect "staging failure: nothing left in /dev/shm" 0 "$(shm_left handoff-bad)"

echo "$failures failure(s)"
exit $((failures > 0))
