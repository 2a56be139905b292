# Packed files end to end: `tensorinit pack` output that the real zstd CLI decodes to the input
# byte for byte, loads of the packed file (host, cuda through the runtime double) byte-exact
# against the original, --split-bytes, chunks rounded to whole frames, and corrupt files refused
# with exit 65 and one line. Needs the zstd CLI (Debian: apt-get install zstd).
source "$(dirname "$0")/lib.sh"
if ! command -v zstd >/dev/null; then
  not_ok "the zstd CLI is missing (apt-get install zstd): the packed format cannot be checked against it"
  finish
  exit 1
fi
# one_error PATTERN: stderr holds exactly one `tensorinit: error:` line, and it matches PATTERN.
one_error() {
  [ "$(grep -c '^tensorinit: error: ' "$TEST_TMP/stderr")" = 1 ] && grep '^tensorinit: error: ' "$TEST_TMP/stderr" | grep -q -- "$1"
}
dir=$TEST_TMP/model
"$TENSORINIT" synth --size 24MiB --seed 11 "$dir" 2>/dev/null
orig=$dir/model.safetensors
packed=$dir/model.safetensors.zst
size=$(stat -c %s "$orig")

# --- pack, and the real zstd CLI.
expect_exit 0 "pack writes a packed copy" "$TENSORINIT" pack "$orig" "$packed"
check "the packed copy is smaller" test "$(stat -c %s "$packed")" -lt "$size"
check "zstd -d gives back the input byte for byte" sh -c "zstd -q -d -c '$packed' | cmp - '$orig'"
check "zstd -t checks every frame's checksum" zstd -q -t "$packed"
check "pack leaves no temporary file" test "$(ls "$dir" | wc -l)" = 2
check "the seek table has checksums and 4 MiB frames" python3 - "$packed" "$size" <<'PY'
import struct, sys
data = open(sys.argv[1], "rb").read()
frames, desc, magic = struct.unpack("<IBI", data[-9:])
assert magic == 0x8F92EAB1 and desc == 0x80, (hex(magic), desc)
table = 8 + 12 * frames + 9
skip_magic, body = struct.unpack("<II", data[-table:-table + 8])
assert skip_magic == 0x184D2A5E and body == table - 8
entries = [struct.unpack("<III", data[-table + 8 + 12 * i: -table + 20 + 12 * i]) for i in range(frames)]
assert sum(e[0] for e in entries) == len(data) - table
assert sum(e[1] for e in entries) == int(sys.argv[2])
assert all(e[1] == 4 << 20 for e in entries[:-1]), [e[1] for e in entries]
PY

# --- inspect shows the same tensors as the original.
expect_exit 0 "inspect --json reads the packed file" "$TENSORINIT" inspect --json "$packed"
cp "$TEST_TMP/stdout" "$TEST_TMP/packed.json"
"$TENSORINIT" inspect --json "$orig" >"$TEST_TMP/orig.json"
check "inspect: same tensors, offsets in the decoded file, packed sizes" python3 - "$TEST_TMP/packed.json" "$TEST_TMP/orig.json" "$packed" <<'PY'
import json, os, sys
p, o = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
strip = lambda ts: [(t["name"], t["dtype"], t["shape"], t["offset"], t["bytes"]) for t in ts]
assert strip(p["tensors"]) == strip(o["tensors"])
assert p["format"] == "packed", p["format"]
f = p["files"][0]
assert f["bytes"] == o["files"][0]["bytes"] and f["packed"]["compressed_bytes"] == os.path.getsize(sys.argv[3])
assert f["packed"]["frame_bytes"] == 4 << 20
PY
expect_exit 0 "inspect (table) reads the packed file" "$TENSORINIT" inspect "$packed"
check "inspect (table) says packed" grep -q "^packed: .*frames of 4.00 MiB" "$TEST_TMP/stdout"

# --- loads: the server (verify_table.py) compares every tensor with the original beside it.
for dio in on off; do
  for chunk in 1MiB 16MiB; do
    m=$(manifest packed-host "$packed" "stage: {target: host, direct_io: $dio, chunk_size: $chunk, readers: 3}" \
      "report: $TEST_TMP/report.json" "handoff: {mode: exec, command: [python3, $TESTS_DIR/tools/verify_table.py]}")
    expect_exit 0 "packed to host (direct_io $dio, chunk $chunk): byte-exact" "$TENSORINIT" run -f "$m"
    check "report: chunks of whole frames, each frame decoded once" python3 - "$TEST_TMP/report.json" "$packed" "$size" <<'PY'
import json, os, sys
r = json.load(open(sys.argv[1]))
assert r["ok"], r
assert r["chunk_size"] % (4 << 20) == 0, r["chunk_size"]
assert r["decoded_bytes"] == int(sys.argv[3]), (r["decoded_bytes"], sys.argv[3])
# Every frame's compressed bytes once, plus (O_DIRECT) up to a block of alignment at each chunk end.
stored = os.path.getsize(sys.argv[2])
chunks = int(sys.argv[3]) // r["chunk_size"] + 1
assert stored * 0.99 < r["compressed_bytes"] <= stored + chunks * 8192, (r["compressed_bytes"], stored)
PY
  done
done
rm -f /dev/shm/tensorinit-packed-host*  # exec mode leaves the arena to the server

# Tensor by tensor against the load of the unpacked file.
m1=$(manifest packed-a "$packed" "report: ''" "handoff: {mode: none}")
m2=$(manifest packed-b "$orig" "report: ''" "handoff: {mode: none}")
"$TENSORINIT" load --keep -f "$m1" 2>/dev/null && "$TENSORINIT" load --keep -f "$m2" 2>/dev/null
check "the packed and the unpacked loads hold the same arena, tensor by tensor" python3 - <<'PY'
import json
a, b = json.load(open("/dev/shm/tensorinit-packed-a.json")), json.load(open("/dev/shm/tensorinit-packed-b.json"))
ma, mb = open(a["arenas"][0]["path"], "rb").read(), open(b["arenas"][0]["path"], "rb").read()
ta = {t["name"]: t for t in a["tensors"]}
assert len(ta) == len(b["tensors"]) > 10
for t in b["tensors"]:
    u = ta[t["name"]]
    assert (u["dtype"], u["shape"], u["bytes"]) == (t["dtype"], t["shape"], t["bytes"]), t["name"]
    assert ma[u["offset"]:u["offset"] + u["bytes"]] == mb[t["offset"]:t["offset"] + t["bytes"]], t["name"]
PY
rm -f /dev/shm/tensorinit-packed-a* /dev/shm/tensorinit-packed-b*

# cuda through the runtime double (it dumps each device arena when freed).
if [ -n "${TENSORINIT_CUDADOUBLE:-}" ]; then
  mkdir -p "$TEST_TMP/dump"
  m=$(manifest packed-cuda "$packed" "stage: {target: cuda, devices: [0], chunk_size: 4MiB, readers: 3}" \
    "report: $TEST_TMP/report.json" "handoff: {mode: none}")
  expect_exit 0 "packed to cuda (runtime double)" env TENSORINIT_CUDA_DOUBLE_DEVICES=1 \
    TENSORINIT_CUDA_DOUBLE_DUMP="$TEST_TMP/dump" "$TENSORINIT_CUDADOUBLE" load --keep -f "$m"
  check "cuda arena is byte-exact" python3 - /dev/shm/tensorinit-packed-cuda.json "$TEST_TMP/dump/cuda0.arena" "$orig" <<'PY'
import json, struct, sys
t, arena, src = json.load(open(sys.argv[1])), open(sys.argv[2], "rb").read(), open(sys.argv[3], "rb").read()
n = struct.unpack("<Q", src[:8])[0]
h = json.loads(src[8:8 + n])
for x in t["tensors"]:
    b, e = h[x["name"]]["data_offsets"]
    assert arena[x["offset"]:x["offset"] + x["bytes"]] == src[8 + n + b: 8 + n + e], x["name"]
PY
  rm -f /dev/shm/tensorinit-packed-cuda*
fi

# pagecache cannot serve a packed file: the server would read compressed bytes.
m=$(manifest packed-pc "$packed" "stage: {target: pagecache}" "report: ''" "handoff: {mode: none}")
expect_exit 66 "target pagecache refuses a packed file" "$TENSORINIT" load -f "$m"
check "pagecache: one error line naming the file and the fix" one_error "model.safetensors.zst: stage.target pagecache cannot serve a packed file.*use target host or cuda"

# --- --split-bytes: smaller, zstd -d returns the stored planes, tensorinit the original.
sdir=$TEST_TMP/split
mkdir -p "$sdir"
cp "$orig" "$sdir/model.safetensors"
expect_exit 0 "pack --split-bytes" "$TENSORINIT" pack --split-bytes --frame-size 3MiB "$orig" "$sdir/model.safetensors.zst"
check "pack --split-bytes says how many frames it split" grep -q "frames as byte planes" "$TEST_TMP/stderr"
"$TENSORINIT" pack --frame-size 3MiB "$orig" "$TEST_TMP/plain-3m.zst" 2>/dev/null
check "byte planes are smaller on bf16 weights" test "$(stat -c %s "$sdir/model.safetensors.zst")" -lt "$(stat -c %s "$TEST_TMP/plain-3m.zst")"
check "zstd -d of a split file returns the planes (same size, other bytes)" sh -c \
  "zstd -q -d -c '$sdir/model.safetensors.zst' > '$TEST_TMP/planes' && test \$(stat -c %s '$TEST_TMP/planes') = $size && ! cmp -s '$TEST_TMP/planes' '$orig'"
m=$(manifest packed-split "$sdir/model.safetensors.zst" "stage: {chunk_size: 4MiB, readers: 4}" "report: $TEST_TMP/report.json" \
  "handoff: {mode: exec, command: [python3, $TESTS_DIR/tools/verify_table.py]}")
expect_exit 0 "split-bytes file loads byte-exact" "$TENSORINIT" run -f "$m"
check "report: chunk 4MiB rounded up to whole 3 MiB frames" python3 -c "import json; r=json.load(open('$TEST_TMP/report.json')); assert r['chunk_size']==6<<20 and r['decoded_bytes']==$size, r"
rm -f /dev/shm/tensorinit-packed-split*

# --- a directory of packed shards, format: packed.
"$TENSORINIT" synth --size 12MiB --shards 2 --seed 5 "$TEST_TMP/sharded" 2>/dev/null
mkdir -p "$TEST_TMP/sharded-packed"
for f in "$TEST_TMP"/sharded/*.safetensors; do
  "$TENSORINIT" pack --frame-size 256KiB "$f" "$TEST_TMP/sharded-packed/$(basename "$f").zst" 2>/dev/null
done
m=$(manifest packed-dir "$TEST_TMP/sharded-packed" "  format: packed" "report: ''" "handoff: {mode: none}")
expect_exit 0 "a directory of packed shards loads (format: packed)" "$TENSORINIT" load -f "$m"
cp "$TEST_TMP/sharded/model.safetensors.index.json" "$TEST_TMP/sharded-packed/"
m=$(manifest packed-sharded "$TEST_TMP/sharded-packed" "report: ''" "handoff: {mode: none}")
# The server stand-in compares with the unpacked shards.
expect_exit 0 "packed shards beside the original index.json load byte-exact" sh -c \
  "'$TENSORINIT' load --keep -f '$m' && TENSORINIT_MODEL_DIR='$TEST_TMP/sharded' $VERIFY --table /dev/shm/tensorinit-packed-sharded.json"
rm -f /dev/shm/tensorinit-packed-sharded*

# --- corrupt packed files: exit 65 and one line naming the file.
cp "$packed" "$TEST_TMP/bad.safetensors.zst"
python3 - "$TEST_TMP/bad.safetensors.zst" <<'PY'
import struct, sys
f = open(sys.argv[1], "r+b"); data = f.read()
frames = struct.unpack("<I", data[-9:-5])[0]
table = len(data) - (8 + 12 * frames + 9) + 8
sizes = [struct.unpack("<I", data[table + 12 * i: table + 12 * i + 4])[0] for i in range(2)]
at = sizes[0] + sizes[1] // 2  # the middle of frame 1
f.seek(at); f.write(bytes([data[at] ^ 0x40]))
PY
m=$(manifest packed-bad "$TEST_TMP/bad.safetensors.zst" "report: ''" "handoff: {mode: none}")
expect_exit 65 "a flipped byte in a frame fails the load" "$TENSORINIT" load -f "$m"
check "one error line naming the file and the frame" one_error "bad.safetensors.zst: packed frame 1"
check "a failed packed load leaves nothing in /dev/shm" no_leftovers packed-bad

head -c -3 "$packed" >"$TEST_TMP/cut.safetensors.zst"
expect_exit 65 "a truncated packed file is refused by inspect" "$TENSORINIT" inspect "$TEST_TMP/cut.safetensors.zst"
check "one error line: no seek table" one_error "cut.safetensors.zst: malformed packed file: no seekable-format magic"
cp "$packed" "$TEST_TMP/lie.safetensors.zst"
python3 - "$TEST_TMP/lie.safetensors.zst" <<'PY'
import struct, sys
f = open(sys.argv[1], "r+b"); data = f.read()
frames = struct.unpack("<I", data[-9:-5])[0]
at = len(data) - (8 + 12 * frames + 9) + 8 + 4  # entry 0's decoded size
f.seek(at); f.write(struct.pack("<I", (4 << 20) + 1))
PY
expect_exit 65 "a seek table whose sizes lie is refused" "$TENSORINIT" inspect "$TEST_TMP/lie.safetensors.zst"
check "one error line naming the file" one_error "lie.safetensors.zst: packed frame 0: holds 4194304 bytes but the seek table says 4194305"

# --- pack's own errors.
expect_exit 65 "pack refuses a file that is not safetensors" "$TENSORINIT" pack "$packed" "$TEST_TMP/x.zst"
expect_exit 64 "pack refuses a bad --frame-size" "$TENSORINIT" pack --frame-size 1000 "$orig" "$TEST_TMP/x.zst"
expect_exit 64 "pack refuses a bad --level" "$TENSORINIT" pack --level 99 "$orig" "$TEST_TMP/x.zst"
expect_exit 64 "pack needs IN and OUT" "$TENSORINIT" pack "$orig"
check "pack left nothing behind" not test -e "$TEST_TMP/x.zst"
check "pack --help says what zstd -d returns for split frames" sh -c "'$TENSORINIT' pack --help | grep -q 'zstd -d does NOT give back the original file'"
finish
