# handoff.restart with stage.target: pagecache from a remote model written through model.cache:
# the table names the cache's copies (<cache>/<model>/<file>), which the restarted server reads
# again. attack8's restart check covered local source files only (the cache's copies had no
# descriptor in the index), so a copy replaced (rename over it: a second instance's fill, an
# operator's sync) or rewritten in place while the first server ran reached the restarted server
# with the old table: other bytes at the indexed offsets (exit 3 here before the fix). Now each
# copy is opened once the cache holds it and checked like a local file before a restart (device,
# inode, size, mtime, ctime, through its descriptor and its path): exit 65 naming the copy.
# The change is made by the first server itself before it exits (an event, not a sleep).
source "$(dirname "$0")/lib.sh"
mkdir -p "$TEST_TMP/www"
"$TENSORINIT" synth --size 2MiB --seed 1 "$TEST_TMP/www/one" 2>/dev/null
start_fault_server "$TEST_TMP/www"
port=$fault_port
file=model.safetensors
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
if not os.path.exists(first):  # the first start: what it read, then the change, then a crash
    json.dump(digests(), open(first, "w"))
    copy = table["tensors"][0]["file"]
    new = os.path.join(tmp, "v2", "model.safetensors")
    if how == "rename":
        os.rename(new, copy)
    elif how == "inplace":
        with open(new, "rb") as a, open(copy, "r+b") as b:
            b.write(a.read())
    sys.exit(1)
sys.exit(0 if digests() == json.load(open(first)) else 3)  # 3: the restarted server read other bytes
PY
run_case() {  # run_case NAME HOW EXPECTED
  local name=$1 how=$2 want=$3
  rm -rf "$TEST_TMP/first.json" "$TEST_TMP/v2" "$TEST_TMP/cache"
  "$TENSORINIT" synth --size 2MiB --seed 2 "$TEST_TMP/v2" 2>/dev/null  # same shapes, other bytes
  cat >"$TEST_TMP/$name.yaml" <<YAML
version: 1
model:
  name: $name
  cache: $TEST_TMP/cache
  sources: [{type: http, url: "http://127.0.0.1:$port/one/", retries: 1}]
stage: {target: pagecache}
report: ''
handoff: {mode: signal, start: after-load, restart: on-failure, max_restarts: 1, restart_delay: 10ms}
YAML
  expect_exit "$want" "pagecache through model.cache, the copy changed ($how) while the server ran" \
    "$TENSORINIT" run -f "$TEST_TMP/$name.yaml" -- python3 "$TEST_TMP/server.py" "$how" "$TEST_TMP"
}
for how in rename inplace; do
  run_case a9-pcc-$how $how 65
  check "$how: one error line naming the cache's copy, no restart" \
    test "$(grep -c "^tensorinit: error: $TEST_TMP/cache/a9-pcc-$how/$file: .*not restarting on it" "$TEST_TMP/stderr")" = 1
  check "$how: nothing left in /dev/shm" no_leftovers a9-pcc-$how
done
# Unchanged copies: the restart goes on (the restarted server reads the same bytes).
run_case a9-pcc-same none 0
check "unchanged: the restart was logged" grep -q "restart" "$TEST_TMP/stderr"
exec {fault_ctl}>&-
rm -f /dev/shm/tensorinit-a9-pcc-* /dev/shm/.tensorinit-a9-pcc-*
finish
