# count15's mapped chunks (chunks of many small tensors in splice mode are mmap'ed with
# MAP_POPULATE and written into the arena by pwritev from the mapping), attacked at exact moments
# through an LD_PRELOAD shim (tests/tools/mmap_faults.c), not timing:
# 1. a filesystem that refuses shared mappings (ENODEV, as FUSE does for files opened with direct
#    I/O): the load falls back to reads and is byte-exact (before the fix: exit 74, "mmap: No such
#    device", on main at 496d6a7);
# 2. the file cut short right after its chunk was mapped: 65, "changed while it was read", no
#    SIGBUS, nothing left (held before);
# 3. the mapped range rewritten in place (same size) right after it was mapped: 65, nothing left
#    (held before);
# 4. merged pieces across tensors of other dtypes and shapes: 2,000 tensors of 8 dtypes, half of
#    them sized in multiples of 256 bytes (merged), their data in another order than the header's,
#    mapped and read: byte-exact (held before).
source "$(dirname "$0")/lib.sh"
tag=attack5-mapped-$$
shim=$TEST_TMP/mmap_faults.so
cc -shared -fPIC -o "$shim" "$TESTS_DIR/tools/mmap_faults.c" -ldl
# An ASan build's runtime must come first in the library list; the shim does not need it to.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"

"$TENSORINIT" synth --size 16MiB --tensors 10000 "$TEST_TMP/model" 2>/dev/null
# direct_io off: page-cache modes only, so the controller reads in splice mode and maps the
# chunks (10,000 tensors of 1.6 KiB: far under the 1 MiB a piece that is spliced instead).
mapped="stage: {direct_io: off}"

m=$(manifest "$tag-refused" "$TEST_TMP/model" "$mapped" \
  "handoff: {mode: exec, command: [env, -u, LD_PRELOAD, python3, $TESTS_DIR/tools/verify_table.py]}")
expect_exit 0 "shared mappings refused: staged by reads, byte-exact" \
  env LD_PRELOAD="$shim" MMAP_REFUSED_UNDER="$TEST_TMP/model" "$TENSORINIT" run -f "$m"
check "shared mappings refused: no error line" not grep -q "tensorinit: error:" "$TEST_TMP/stderr"
check "shared mappings refused: the server verified every tensor" grep -q "verified 10000 tensors" "$TEST_TMP/stdout"
m=$(manifest "$tag-refused" "$TEST_TMP/model" "$mapped" "handoff: {mode: none}")
expect_exit 0 "shared mappings refused: load exits 0" \
  env LD_PRELOAD="$shim" MMAP_REFUSED_UNDER="$TEST_TMP/model" "$TENSORINIT" load -f "$m"

for how in cut rewrite; do
  rm -rf "$TEST_TMP/m-$how" && cp -r "$TEST_TMP/model" "$TEST_TMP/m-$how"
  file=$TEST_TMP/m-$how/model.safetensors
  m=$(manifest "$tag-$how" "$TEST_TMP/m-$how" "$mapped" "handoff: {mode: none}")
  expect_exit 65 "$how right after the chunk was mapped: bad data" \
    env LD_PRELOAD="$shim" MMAP_CHANGE=$how MMAP_CHANGE_PATH="$file" "$TENSORINIT" load -f "$m"
  check "$how: the file was changed by the shim (the mapped path ran)" not cmp -s "$file" "$TEST_TMP/model/model.safetensors"
  check "$how: one error line, changed while it was read" \
    test "$(grep -c "^tensorinit: error: $file: changed while it was" "$TEST_TMP/stderr")" = 1
  check "$how: nothing left in /dev/shm" no_leftovers "$tag-$how"
done

python3 - "$TEST_TMP/mixed" <<'EOF'
import json, os, random, struct, sys
random.seed(5)
size = {"F32": 4, "BF16": 2, "U8": 1, "F64": 8, "I8": 1, "F16": 2, "I64": 8, "BOOL": 1}
tensors = []
for i in range(2000):
    d = random.choice(sorted(size))
    n = 256 // size[d] * random.randint(1, 8) if random.random() < 0.5 else random.randint(1, 700)
    tensors.append((f"t{i:05d}.{d}", d, n))
random.shuffle(tensors)  # the data in another order than the names'
header, data = {}, bytearray()
for name, d, n in tensors:
    header[name] = {"dtype": d, "shape": [n], "data_offsets": [len(data), len(data) + n * size[d]]}
    data += random.randbytes(n * size[d])
text = json.dumps(dict(sorted(header.items()))).encode()
text += b" " * (-len(text) % 8)
os.makedirs(sys.argv[1])
with open(os.path.join(sys.argv[1], "model.safetensors"), "wb") as f:
    f.write(struct.pack("<Q", len(text)) + text + data)
EOF
m=$(manifest "$tag-mixed" "$TEST_TMP/mixed" "stage: {direct_io: off, chunk_size: 1MiB}" \
  "handoff: {mode: exec, command: [env, -u, LD_PRELOAD, python3, $TESTS_DIR/tools/verify_table.py]}")
expect_exit 0 "mixed dtypes and shapes, merged pieces, mapped: byte-exact" "$TENSORINIT" run -f "$m"
check "mixed, mapped: the server verified every tensor" grep -q "verified 2000 tensors" "$TEST_TMP/stdout"
expect_exit 0 "mixed dtypes and shapes, mappings refused (read): byte-exact" \
  env LD_PRELOAD="$shim" MMAP_REFUSED_UNDER="$TEST_TMP/mixed" "$TENSORINIT" run -f "$m"
check "mixed, read: the server verified every tensor" grep -q "verified 2000 tensors" "$TEST_TMP/stdout"

finish
