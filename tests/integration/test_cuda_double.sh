# The cuda target end to end through `tensorinit load`, with the strict CUDA runtime double linked
# in place of cudart (tensorinit_cudadouble): byte-exact replicas on two devices (the double dumps
# each device arena when it is freed), the table's IPC objects, target resolution, exit 69 without
# a driver. The double aborts the process on any misuse, so a clean exit is itself a check.
source "$(dirname "$0")/lib.sh"
: "${TENSORINIT_CUDADOUBLE:?run through ctest (tests/CMakeLists.txt passes it)}"
CD=$TENSORINIT_CUDADOUBLE
export TENSORINIT_CUDA_DOUBLE_DEVICES=2 TENSORINIT_CUDA_DOUBLE_DUMP=$TEST_TMP/dump
mkdir -p "$TEST_TMP/dump"
model=$TEST_TMP/model
"$TENSORINIT" synth --size 40MiB --shards 2 --seed 3 "$model" 2>/dev/null

# replica_check TABLE K: points arena K's tensors at the double's dump of that device, then checks
# every tensor byte for byte against the source files (tests/tools/verify_table.py).
replica_check() {
  python3 - "$1" "$2" "$TEST_TMP/dump" "$TEST_TMP/replica.json" <<'PY' && TENSORINIT_MODEL_DIR=$3 $VERIFY --table "$TEST_TMP/replica.json"
import json, sys, os
table, k, dump, out = json.load(open(sys.argv[1])), int(sys.argv[2]), sys.argv[3], sys.argv[4]
arena = table["arenas"][k]
dev = int(arena["device"].split(":")[1])
arena["path"] = f"{dump}/cuda{dev}.arena"
assert os.path.getsize(arena["path"]) == arena["bytes"], "dump size differs from the arena"
for t in table["tensors"]:
    t["arena"] = k
json.dump(table, open(out, "w"))
PY
}

for chunk in 1MiB 4MiB; do
  rm -f "$TEST_TMP"/dump/*
  m=$(manifest cudadouble "$model" \
    "stage: {target: cuda, devices: [1, 0], chunk_size: $chunk, readers: 3, memory_limit: 12MiB, direct_io: on}" \
    "report: $TEST_TMP/report.json" "handoff: {mode: none}")
  expect_exit 0 "load to cuda:1 and cuda:0 (chunk $chunk) without misuse" "$CD" load --keep -f "$m"
  table=/dev/shm/tensorinit-cudadouble.json
  check "report says target cuda" python3 -c "import json; r=json.load(open('$TEST_TMP/report.json')); assert r['ok'] and r['target']=='cuda', r"
  check "table: two cuda arenas with cuda_ipc handles" python3 - "$table" <<'PY'
import json, re, sys
t = json.load(open(sys.argv[1]))
a = t["arenas"]
assert [x["device"] for x in a] == ["cuda:1", "cuda:0"], a
for x, dev in zip(a, (1, 0)):
    ipc = x["ipc"]
    assert ipc["kind"] == "cuda_ipc" and ipc["device"] == dev and "path" not in x, x
    assert re.fullmatch(r"[0-9a-f]{128}", ipc["handle"]), ipc
    assert re.fullmatch(r"GPU-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", ipc["uuid"]), ipc
assert all(x["arena"] == 0 and x["offset"] % 256 == 0 for x in t["tensors"])
PY
  check "replica on cuda:1 is byte-exact" replica_check "$table" 0 "$model"
  check "replica on cuda:0 is byte-exact" replica_check "$table" 1 "$model"
  [ "$chunk" = 4MiB ] || rm -f "$table"
done
# The check can fail: one flipped byte in a device arena is found.
python3 -c "
import sys; p='$TEST_TMP/dump/cuda0.arena'; b=bytearray(open(p,'rb').read()); b[len(b)//2]^=1; open(p,'wb').write(b)"
check "a corrupted replica is caught" not replica_check "$table" 1 "$model"
rm -f "$table"

# The golden fixture through the same path (SHA-256 per tensor).
rm -f "$TEST_TMP"/dump/*
m=$(manifest cudagolden "$FIXTURES/tiny-f16.safetensors" "stage: {target: cuda, chunk_size: 4KiB}" "report: ''" "handoff: {mode: none}")
expect_exit 0 "golden fixture to cuda:0" "$CD" load --keep -f "$m"
check "golden fixture hashes match on the device" python3 - /dev/shm/tensorinit-cudagolden.json "$TEST_TMP" <<'PY'
import json, sys
t = json.load(open(sys.argv[1])); t["arenas"][0]["path"] = sys.argv[2] + "/dump/cuda0.arena"
json.dump(t, open(sys.argv[2] + "/golden.json", "w"))
PY
check "golden: verify_table --expect" $VERIFY --table "$TEST_TMP/golden.json" --expect "$FIXTURES/tiny-f16.safetensors.expect.json"
rm -f /dev/shm/tensorinit-cudagolden.json

# Target resolution.
m=$(manifest cudares "$model" "stage: {target: cuda}" "report: ''" "handoff: {mode: none}")
TENSORINIT_CUDA_DOUBLE_DEVICES=nodriver expect_exit 69 "target cuda without a driver" "$CD" load -f "$m"
check "the error says why" grep -q "stage.target is cuda but CUDA is unusable: cudaGetDeviceCount: CUDA driver version is insufficient" "$TEST_TMP/stderr"
m=$(manifest cudares "$model" "stage: {target: cuda, devices: [2]}" "report: ''" "handoff: {mode: none}")
expect_exit 69 "a device that does not exist" "$CD" load -f "$m"
check "the error names it" grep -q "cuda:2 does not exist (2 CUDA devices)" "$TEST_TMP/stderr"
m=$(manifest cudares "$model" "stage: {target: auto}" "report: $TEST_TMP/auto.json" "handoff: {mode: none}")
TENSORINIT_CUDA_DOUBLE_DEVICES=nodriver expect_exit 0 "auto without a driver" "$CD" load -f "$m"
check "auto says it uses host" grep -q "stage.target auto: using host (cudaGetDeviceCount: CUDA driver" "$TEST_TMP/stderr"
check "auto staged to host" python3 -c "import json; assert json.load(open('$TEST_TMP/auto.json'))['target']=='host'"
TENSORINIT_CUDA_DOUBLE_DEVICES=1 expect_exit 0 "auto with a device" "$CD" load -f "$m"
check "auto says it uses cuda" grep -q "stage.target auto: using cuda (devices 0)" "$TEST_TMP/stderr"
check "auto staged to cuda" python3 -c "import json; assert json.load(open('$TEST_TMP/auto.json'))['target']=='cuda'"
check "nothing left in /dev/shm" no_leftovers cudares

# The shipped binary (static cudart, or no CUDA at all) on this machine: no GPU here.
if ! ls /dev/nvidia0 >/dev/null 2>&1; then
  m=$(manifest cudareal "$model" "stage: {target: cuda}" "report: ''" "handoff: {mode: none}")
  expect_exit 69 "tensorinit, target cuda, no GPU" "$TENSORINIT" load -f "$m"
  check "one clear error line" grep -q "^tensorinit: error: .*stage.target is cuda but CUDA is unusable" "$TEST_TMP/stderr"
  m=$(manifest cudareal "$model" "stage: {target: auto}" "report: ''" "handoff: {mode: none}")
  expect_exit 0 "tensorinit, target auto, no GPU" "$TENSORINIT" load -f "$m"
  check "auto fell back to host" grep -q "stage.target auto: using host" "$TEST_TMP/stderr"
fi
finish
