# The golden safetensors file, staged and handed to a server that checks every tensor's bytes.
source "$(dirname "$0")/lib.sh"
golden=$FIXTURES/tiny-f16.safetensors
expect=$FIXTURES/tiny-f16.safetensors.expect.json

m=$(manifest golden-host "$golden" "stage: {target: host}" "report: $TEST_TMP/report.json" \
  "handoff: {mode: exec, command: [python3, $TESTS_DIR/tools/verify_table.py, --expect, $expect]}")
expect_exit 0 "run (exec) hands a byte-exact host arena to the server" "$TENSORINIT" run -f "$m"
check "server saw every tensor" grep -q "verified 10 tensors" "$TEST_TMP/stdout"
check "report is ok and names the source" python3 - "$TEST_TMP/report.json" "$golden" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["ok"] is True and r["error"] is None, r
assert r["decision"]["chosen"] == {"type": "image", "path": sys.argv[2]}, r["decision"]
assert r["tensors"] == 10 and r["files"] == 1 and r["target"] == "host", r
for k in ("total", "plan", "index", "stage"): assert r["seconds"][k] >= 0, k
assert r["bytes"] > 0 and r["throughput_gbps"] > 0
PY

m=$(manifest golden-pc "$golden" "stage: {target: pagecache}" "report: ''" \
  "handoff: {mode: exec, command: [python3, $TESTS_DIR/tools/verify_table.py, --expect, $expect]}")
expect_exit 0 "run (exec) with target pagecache gives file offsets" "$TENSORINIT" run -f "$m"
check "pagecache: no arena created" no_leftovers golden-pc-0

# As PID 1, exec mode keeps tensorinit as the init: the server runs as its child, and the arena
# is removed once the server is gone.
m=$(manifest golden-pid1 "$golden" "report: ''" \
  "handoff: {mode: exec, command: [python3, $TESTS_DIR/tools/verify_table.py, --expect, $expect]}")
expect_exit 0 "as PID 1, exec mode supervises a byte-exact server" unshare -fp --mount-proc "$TENSORINIT" run -f "$m"
check "as PID 1 the server verified every tensor" grep -q "verified 10 tensors" "$TEST_TMP/stdout"
check "as PID 1 the arena and table are gone after the server" no_leftovers golden-pid1
expect_exit 3 "as PID 1 the server's exit code is ours" unshare -fp --mount-proc "$TENSORINIT" run -f "$m" -- sh -c 'exit 3'

# COMMAND after -- overrides handoff.command; the server's exit code is ours.
expect_exit 7 "server's exit code propagates" "$TENSORINIT" run -f "$m" -- sh -c 'exit 7'
check "server gets TENSORINIT_* env" "$TENSORINIT" run -f "$m" -- sh -c \
  'test "$TENSORINIT_SOURCE" = image && test -f "$TENSORINIT_TABLE" && test "$TENSORINIT_MODEL_DIR" = "'"$FIXTURES"'"'
expect_exit 127 "missing server command" "$TENSORINIT" run -f "$m" -- /nonexistent/server
check "error names the command" grep -q "/nonexistent/server" "$TEST_TMP/stderr"

# load: stage, report, exit; the arena is removed unless --keep.
m=$(manifest golden-load "$golden" "report: ''" "handoff: {mode: none}")
expect_exit 0 "load stages and exits" "$TENSORINIT" load -f "$m" --report "$TEST_TMP/load.json"
check "load leaves nothing behind" no_leftovers golden-load
expect_exit 0 "load --keep keeps the arena and table" "$TENSORINIT" load -f "$m" --keep
check "kept table verifies" $VERIFY --expect "$expect" --table /dev/shm/tensorinit-golden-load.json
rm -f /dev/shm/tensorinit-golden-load*

# TENSORINIT_MANIFEST stands in for -f.
expect_exit 0 "TENSORINIT_MANIFEST replaces -f" env TENSORINIT_MANIFEST="$m" "$TENSORINIT" plan
rm -f /dev/shm/tensorinit-golden-*
finish
