# A remote that lies: it ignores If-Match and keeps the ETag while the object changes (rewritten in
# place, mtime restored). The load indexes the header, stages the tensors, then reads the header
# again to complete the write-through copy, and got the new version's header: before the fix the
# copy (two tensors' offsets swapped) was committed with a record, and the next start trusted it,
# serving each of the two tensors under the other's name. Now the copy is checked against the
# index before it is recorded: the load goes on (its bytes are the indexed ones), nothing cached.
source "$(dirname "$0")/lib.sh"
mkdir -p "$TEST_TMP/www"
"$TENSORINIT" synth --size 1MiB --seed 7 "$TEST_TMP/www/one" 2>/dev/null
file=$TEST_TMP/www/one/model.safetensors
cp -p "$file" "$TEST_TMP/original.safetensors"
# The 4th request for the file (probe, length, header, then the tensors) stalls 5 s: the header is
# rewritten meanwhile, before the read that completes the copy.
start_fault_server "$TEST_TMP/www" --fault "/one/model.safetensors stall seconds=5 skip=3"
port=$fault_port
echo "set if_match ignore" >&"$fault_ctl"
cat >"$TEST_TMP/lie.yaml" <<EOF
version: 1
model:
  name: lie
  cache: $TEST_TMP/cache
  sources: [{type: http, url: "http://127.0.0.1:$port/one/", retries: 1}]
report: ''
handoff: {mode: none}
EOF
"$TENSORINIT" load -f "$TEST_TMP/lie.yaml" >"$TEST_TMP/stdout" 2>"$TEST_TMP/stderr" &
load=$!
# Wait for the stalled request (the 4th for the file), then swap two same-shaped tensors' offsets.
python3 - "$port" "$file" <<'PY'
import json, os, struct, sys, time, urllib.request
port, path = sys.argv[1], sys.argv[2]
for _ in range(1200):
    log = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/_control/log"))
    if sum(1 for r in log if r["path"] == "/one/model.safetensors") >= 4:
        break
    time.sleep(0.05)
else:
    sys.exit("the load never reached the tensor read")
st = os.stat(path)
with open(path, "r+b") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    header = json.loads(f.read(n))
    shapes = {}
    for k, v in header.items():
        if k != "__metadata__":
            shapes.setdefault((v["dtype"], tuple(v["shape"])), []).append(k)
    a, b = next(v for v in shapes.values() if len(v) >= 2)[:2]
    header[a]["data_offsets"], header[b]["data_offsets"] = header[b]["data_offsets"], header[a]["data_offsets"]
    text = json.dumps(header, separators=(",", ":")).encode()
    f.seek(8)
    f.write(text + b" " * (n - len(text)))
os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # same inode, size and mtime: the same ETag
PY
rc=0; wait $load || rc=$?
check "the load itself succeeds (it staged the bytes it indexed)" test "$rc" = 0
check "the copy is not recorded" test ! -e "$TEST_TMP/cache/lie/model.safetensors.tensorinit.json"
check "the warning says why" grep -q "header differs from the one indexed" "$TEST_TMP/stderr"
# The next start (the remote honest again) takes the cache first when its copy is recorded: it
# must stage the tensors as they are, not the lying copy's.
cp "$TEST_TMP/original.safetensors" "$file"
expect_exit 0 "the next start loads" "$TENSORINIT" load -f "$TEST_TMP/lie.yaml" --keep
mkdir -p "$TEST_TMP/orig" && cp "$TEST_TMP/original.safetensors" "$TEST_TMP/orig/model.safetensors"
check "the next start staged the true tensors" env TENSORINIT_MODEL_DIR="$TEST_TMP/orig" \
  $VERIFY --table /dev/shm/tensorinit-lie.json
exec {fault_ctl}>&-
rm -f /dev/shm/tensorinit-lie* /dev/shm/.tensorinit-lie.lock
finish
