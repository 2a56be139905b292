# handoff.restart with stage.target: pagecache: the table names the source files (file,
# file_offset), so a restarted server reads the tensors from them again. Before the fix the restart
# check had "nothing of tensorinit's to check" there: a model file replaced while the first server
# ran (a sync job updating the volume: rename of a new version over the path; or rewritten in
# place) was taken by the restarted server with the old table: other bytes at the indexed offsets,
# and in signal mode tensorinit sent it the ready signal all the same. Now each source file is
# checked unchanged before a restart (the same identity check as at the end of staging, through
# its path: device, inode, size, mtime, ctime): exit 65 naming the file, no restart on it.
# The replacement is made by the first server itself before it exits (an event, not a sleep).
source "$(dirname "$0")/lib.sh"
"$TENSORINIT" synth --size 4MiB --seed 1 "$TEST_TMP/v1" 2>/dev/null
"$TENSORINIT" synth --size 4MiB --seed 2 "$TEST_TMP/v2" 2>/dev/null
cat >"$TEST_TMP/server.py" <<'PY'
import hashlib, json, os, sys
how, tmp = sys.argv[1], sys.argv[2]
table = json.load(open(os.environ["TENSORINIT_TABLE"]))
def digests():
    out = {}
    for t in table["tensors"]:
        with open(t["file"], "rb") as f:
            f.seek(t["file_offset"])
            out[t["name"]] = hashlib.sha256(f.read(t["bytes"])).hexdigest()
    return out
first = os.path.join(tmp, "first.json")
if not os.path.exists(first):  # the first start: what it read, then the operator's update, then a crash
    json.dump(digests(), open(first, "w"))
    src = os.path.join(tmp, "m", "model.safetensors")
    new = os.path.join(tmp, "v2", "model.safetensors")
    if how == "rename":
        os.rename(new, src)
    else:
        with open(new, "rb") as a, open(src, "r+b") as b:
            b.write(a.read())
    sys.exit(1)
sys.exit(0 if digests() == json.load(open(first)) else 3)  # 3: the restarted server read other bytes
PY
for how in rename inplace; do
  rm -rf "$TEST_TMP/m" "$TEST_TMP/first.json" && mkdir -p "$TEST_TMP/m"
  cp "$TEST_TMP/v1/model.safetensors" "$TEST_TMP/m/"
  [ -e "$TEST_TMP/v2/model.safetensors" ] || "$TENSORINIT" synth --size 4MiB --seed 2 "$TEST_TMP/v2" 2>/dev/null
  m=$(manifest a8-pc-$how "$TEST_TMP/m" "stage: {target: pagecache}" "report: ''" \
    "handoff: {mode: signal, start: after-load, restart: on-failure, max_restarts: 1, restart_delay: 10ms}")
  expect_exit 65 "pagecache, the model file replaced ($how) while the server ran: no restart on it" \
    "$TENSORINIT" run -f "$m" -- python3 "$TEST_TMP/server.py" $how "$TEST_TMP"
  check "one error line naming the file, no restart" \
    test "$(grep -c "^tensorinit: error: $TEST_TMP/m/model.safetensors: .*not restarting on it" "$TEST_TMP/stderr")" = 1
  check "nothing left in /dev/shm" no_leftovers a8-pc-$how
done
# Unchanged files: the restart goes on as before (the restarted server reads the same bytes).
rm -rf "$TEST_TMP/m" "$TEST_TMP/first.json" && mkdir -p "$TEST_TMP/m" && cp "$TEST_TMP/v1/model.safetensors" "$TEST_TMP/m/"
cat >"$TEST_TMP/crash_once.py" <<'PY'
import os, sys
flag = os.path.join(sys.argv[1], "crashed")
if not os.path.exists(flag):
    open(flag, "w").close()
    sys.exit(1)
PY
m=$(manifest a8-pc-same "$TEST_TMP/m" "stage: {target: pagecache}" "report: ''" \
  "handoff: {mode: signal, start: after-load, restart: on-failure, max_restarts: 1, restart_delay: 10ms}")
expect_exit 0 "pagecache, files unchanged: restarted" "$TENSORINIT" run -f "$m" -- python3 "$TEST_TMP/crash_once.py" "$TEST_TMP"
check "the restart was logged" grep -q "restart" "$TEST_TMP/stderr"
finish
