# Tensorizer (.tensors) files against the real binary. The golden file (written by tensorizer
# 2.11.1) is staged and checked byte for byte by a stand-in server; so are files written here by
# the real tensorizer package when it is importable (python3, $TENSORIZER_PYTHON, or the bench
# venv), each compared with what tensorizer's own deserializer reads. Broken files exit 65/66.
source "$(dirname "$0")/lib.sh"
golden=$FIXTURES/tiny-mixed.tensors
tag=tz-$$

# load_verify NAME FILE EXPECT: `tensorinit run` (exec) into verify_table.py --expect. The arena
# outlives the exec (the server owns it): removed at the end.
load_verify() {
  local name=$1 file=$2 expect=$3 m
  m=$(manifest "$tag-$name" "$file" "stage: {target: host}" "report: ''" \
    "handoff: {mode: exec, command: [python3, $TESTS_DIR/tools/verify_table.py, --expect, $expect]}")
  expect_exit 0 "$name: staged and handed over byte-exact" "$TENSORINIT" run -f "$m"
  check "$name: the server verified every tensor" grep -q "verified .* byte-exact" "$TEST_TMP/stdout"
}

load_verify golden "$golden" "$golden.expect.json"
expect_exit 0 "inspect --json lists the golden file as tensorizer" "$TENSORINIT" inspect --json "$golden"
check "inspect: 16 tensors, format tensorizer" python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
assert j["format"] == "tensorizer", j["format"]
assert len(j["tensors"]) == 16 and {"mask", "q8", "embed.weight"} <= {t["name"] for t in j["tensors"]}
' "$TEST_TMP/stdout"

# Broken copies of the golden file: each exits 65 (malformed) or 66 (incomplete), one error line.
python3 - "$golden" "$TEST_TMP" <<'PY'
import struct, sys
good = open(sys.argv[1], "rb").read()
out = sys.argv[2]
def patched(at, data):
    b = bytearray(good); b[at:at + len(data)] = data; return bytes(b)
index_end = 73 + struct.unpack_from("<Q", good, 65)[0]
first_header = struct.unpack_from("<Q", good, 73 + 2 + 5 + 1 + 1 + 3 + 1 + 4)[0]  # ".mask", "|b1", [32]
files = {
    "badmagic": patched(0, b"|TZX|"),
    "version9": patched(5, struct.pack("<I", 9)),
    "encrypted": patched(5, struct.pack("<I", 3)),
    "lyinglen": patched(73 + 2 + 5 + 1 + 1 + 3 + 1 + 4 + 16, struct.pack("<Q", 33)),  # .mask data_length
    "badheader": patched(first_header, struct.pack("<Q", 9999)),
    "truncated": good[:-200],
}
for name, data in files.items():
    open(f"{out}/{name}.tensors", "wb").write(data)
PY
for kind in badmagic version9 encrypted lyinglen badheader truncated; do
  want=65; [ "$kind" = truncated ] && want=66
  expect_exit $want "inspect $kind" "$TENSORINIT" inspect "$TEST_TMP/$kind.tensors"
  check "$kind: one error line naming the file" \
    test "$(grep -c "^tensorinit: error: $TEST_TMP/$kind.tensors: " "$TEST_TMP/stderr")" = 1
done
expect_exit 65 "inspect encrypted" "$TENSORINIT" inspect "$TEST_TMP/encrypted.tensors"
check "encrypted: version 3 headers without crypt_info are malformed" grep -q "crypt_info" "$TEST_TMP/stderr"

# Files written by the real tensorizer package.
py=$(tensorizer_python)
if [ -z "$py" ]; then
  echo "skip - no python with tensorizer and torch (set TENSORIZER_PYTHON): real-writer files not tested"
else
  written=$TEST_TMP/written
  expect_exit 0 "the real tensorizer writes the fixtures ($py)" "$py" "$TESTS_DIR/tools/make_tensorizer_fixtures.py" "$written"
  sed 's/^/    /' "$TEST_TMP/stdout" "$TEST_TMP/stderr"
  for name in modules plain nested meta long; do
    load_verify "$name" "$written/$name.tensors" "$written/$name.tensors.expect.json"
  done
  # Meta tensors (data version 4) have no bytes in the file: they load (above) as zeros.
  expect_exit 0 "meta: inspect indexes a data-version-4 file" "$TENSORINIT" inspect --json "$written/meta.tensors"
  check "meta: the meta tensors are listed at full size" python3 -c '
import json, sys
j = {t["name"]: t for t in json.load(open(sys.argv[1]))["tensors"]}
e = {t["name"]: t for t in json.load(open(sys.argv[2]))["tensors"]}
assert set(j) == set(e), (set(j), set(e))
for n, t in e.items():
    assert j[n]["dtype"] == t["dtype"] and j[n]["shape"] == t["shape"], n
assert j["ghost.weight"]["bytes"] == 96 and j["ghost.bias"]["bytes"] == 12
' "$TEST_TMP/stdout" "$written/meta.tensors.expect.json"
fi

rm -f /dev/shm/tensorinit-"$tag"*
finish
