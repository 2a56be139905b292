# Encrypted and checksummed tensorizer files through the real binary. The fixtures were written by
# the real tensorizer 2.12.1 (tests/tools/make_tensorizer_fixtures.py --encrypted; regenerated
# here too when a python with tensorizer and torch is found): loaded with model.key (hex through
# ${VAR}, and base64) and model.passphrase, to the host arena (every tensor compared by a stand-in
# server through the table with what tensorizer's own TensorDeserializer read) and to cuda (the
# runtime double); `verify: checksums` on; no key, a wrong key, altered bytes and a wrong hash each
# exit 65 naming the file and tensor, never printing the key, leaving nothing in /dev/shm.
source "$(dirname "$0")/lib.sh"
KEY=5be7c4f1a09d3e26b8f05a7c1d92e4b36a0f8c5d7e19b2a4c6d8e0f1a3b5c7d9  # make_tensorizer_fixtures.py TEST_KEY
PASSPHRASE="correct horse battery staple"
B64=$(python3 -c 'import base64, sys; print(base64.b64encode(bytes.fromhex(sys.argv[1])).decode())' "$KEY")
tag=tzc-$$

# load_verify NAME FILE EXPECT [MODEL-LINES...]: `tensorinit run` (exec) into verify_table.py --expect.
load_verify() {
  local name=$1 file=$2 expect=$3 m; shift 3
  m=$(manifest "$tag-$name" "$file" "$@" "stage: {target: host, chunk_size: 4MiB}" "report: ''" \
    "handoff: {mode: exec, command: [python3, $TESTS_DIR/tools/verify_table.py, --expect, $expect]}")
  expect_exit 0 "$name: staged and handed over byte-exact" "$TENSORINIT" run -f "$m"
  check "$name: the server verified every tensor" grep -q "verified .* byte-exact" "$TEST_TMP/stdout"
  check "$name: the key is not in the output" not grep -qi -e "$KEY" -e "$B64" "$TEST_TMP/stderr" "$TEST_TMP/stdout"
  rm -f /dev/shm/tensorinit-"$tag-$name"*
}

# load_fails NAME FILE FRAGMENT [MODEL-LINES...]: `tensorinit load` exits 65 with one error line
# naming the file and holding FRAGMENT, and leaves nothing behind.
load_fails() {
  local name=$1 file=$2 fragment=$3 m; shift 3
  m=$(manifest "$tag-$name" "$file" "$@" "stage: {target: host}" "report: ''" "handoff: {mode: none}")
  expect_exit 65 "$name: refused" "$TENSORINIT" load -f "$m"
  check "$name: one error line naming the file and the fault" \
    test "$(grep -c "^tensorinit: error: $file: .*$fragment" "$TEST_TMP/stderr")" = 1
  check "$name: the key is not in the output" not grep -qi -e "$KEY" -e "$B64" -e "$PASSPHRASE" "$TEST_TMP/stderr"
  check "$name: nothing left in /dev/shm" no_leftovers "$tag-$name"
}

run_fixtures() {  # run_fixtures DIR LABEL
  local dir=$1 label=$2
  TZ_TEST_KEY=$KEY load_verify "$label-key-hex" "$dir/tensorizer-key.tensors" "$dir/tensorizer-key.tensors.expect.json" \
    '  key: ${TZ_TEST_KEY}' "  verify: checksums"
  load_verify "$label-key-b64" "$dir/tensorizer-key.tensors" "$dir/tensorizer-key.tensors.expect.json" "  key: $B64"
  load_verify "$label-passphrase" "$dir/tensorizer-passphrase.tensors" "$dir/tensorizer-passphrase.tensors.expect.json" \
    "  passphrase: '$PASSPHRASE'" "  verify: checksums"
  check "$label-passphrase: says the key was derived" grep -q "key derived from model.passphrase" "$TEST_TMP/stderr"
}

run_fixtures "$FIXTURES" fixture

# Regression: stage.chunk_size below tensorizer's 2 MiB encryption chunk was refused (exit 78);
# the reads of that tensor now grow to whole encryption chunks, within stage.memory_limit.
m=$(manifest "$tag-smallchunk" "$FIXTURES/tensorizer-key.tensors" "  key: $KEY" "  verify: checksums" \
  "stage: {target: host, chunk_size: 1MiB}" "report: $TEST_TMP/smallchunk.json" \
  "handoff: {mode: exec, command: [python3, $TESTS_DIR/tools/verify_table.py, --expect, $FIXTURES/tensorizer-key.tensors.expect.json]}")
expect_exit 0 "chunk_size 1MiB under 2 MiB encryption chunks: staged byte-exact" "$TENSORINIT" run -f "$m"
check "smallchunk: the server verified every tensor" grep -q "verified .* byte-exact" "$TEST_TMP/stdout"
check "smallchunk: says the reads grew" grep -q "tensor 'wide' is encrypted in chunks of 2.00 MiB: reading it in chunks of that size" "$TEST_TMP/stderr"
check "smallchunk: the report gives the chunk size used" python3 -c '
import json, sys
assert json.load(open(sys.argv[1]))["chunk_size"] == 2 << 20' "$TEST_TMP/smallchunk.json"
rm -f /dev/shm/tensorinit-"$tag"-smallchunk*
m=$(manifest "$tag-tinymem" "$FIXTURES/tensorizer-key.tensors" "  key: $KEY" \
  "stage: {target: host, chunk_size: 1MiB, memory_limit: 1MiB}" "report: ''" "handoff: {mode: none}")
expect_exit 78 "an encryption chunk over stage.memory_limit is refused" "$TENSORINIT" load -f "$m"
check "tinymem: says to raise memory_limit" grep -q "more than stage.memory_limit (1.00 MiB) can buffer: raise stage.memory_limit" "$TEST_TMP/stderr"
check "tinymem: nothing left in /dev/shm" no_leftovers "$tag-tinymem"

# inspect lists an encrypted file without a key (the index is not encrypted).
expect_exit 0 "inspect an encrypted file without a key" "$TENSORINIT" inspect --json "$FIXTURES/tensorizer-key.tensors"
check "inspect: names, dtypes and shapes as tensorizer reads them" python3 -c '
import json, sys
j = {t["name"]: t for t in json.load(open(sys.argv[1]))["tensors"]}
e = {t["name"]: t for t in json.load(open(sys.argv[2]))["tensors"]}
assert set(j) == set(e), set(j) ^ set(e)
assert all(j[n]["dtype"] == t["dtype"] and j[n]["shape"] == t["shape"] for n, t in e.items())
' "$TEST_TMP/stdout" "$FIXTURES/tensorizer-key.tensors.expect.json"

# Refusals: no key, wrong key, wrong passphrase, a passphrase for a key-encrypted file, altered data.
key_file=$FIXTURES/tensorizer-key.tensors
load_fails nokey "$key_file" "encrypted: set model.key"
load_fails wrongkey "$key_file" "tensor '[a-z.]*': decryption failed at chunk 1 of [0-9]*: wrong model.key or model.passphrase" \
  "  key: 0${KEY:1}"
load_fails wrongpass "$FIXTURES/tensorizer-passphrase.tensors" "decryption failed" "  passphrase: 'Correct horse battery staple'"
load_fails passforkey "$key_file" "tensor '[a-z.]*' was encrypted with a key, not a passphrase" "  passphrase: x"
python3 - "$key_file" "$TEST_TMP/altered.tensors" <<'PY'
import struct, sys
b = bytearray(open(sys.argv[1], "rb").read())
at = b.index(b".wide", 73 + struct.unpack_from("<Q", b, 65)[0])  # the record header of 'wide' (2 MiB + 4 KiB)
header = at - 13                              # u64 len, u16 module, u8 type, u16 name_len
data = header + struct.unpack_from("<Q", b, header)[0]
b[data + 3 * 1024 * 1024 // 2] ^= 0x40        # inside its first 2 MiB encryption chunk
open(sys.argv[2], "wb").write(b)
PY
load_fails altered "$TEST_TMP/altered.tensors" "tensor 'wide': decryption failed at chunk 1 of 2" "  key: $KEY"

# Checksums of plain files: tensorizer's CRC-32 and SHA-256 (the golden file, one data byte
# flipped in a copy: found only when asked to look).
python3 - "$FIXTURES/tiny-mixed.tensors" "$TEST_TMP/flipped.tensors" <<'PY'
import struct, sys
b = bytearray(open(sys.argv[1], "rb").read())
end = 73 + struct.unpack_from("<Q", b, 65)[0]
at = b.index(b"embed.weight", end)            # record header of embed.weight
header = at - 13
data = header + struct.unpack_from("<Q", b, header)[0]
b[data + 10] ^= 1
open(sys.argv[2], "wb").write(b)
PY
load_fails wronghash "$TEST_TMP/flipped.tensors" "tensor 'embed.weight': CRC-32 mismatch" "  verify: checksums"
m=$(manifest "$tag-sizeonly" "$TEST_TMP/flipped.tensors" "  verify: size" "stage: {target: host}" "report: ''" "handoff: {mode: none}")
expect_exit 0 "verify: size does not read checksums" "$TENSORINIT" load -f "$m"
m=$(manifest "$tag-goldensum" "$FIXTURES/tiny-mixed.tensors" "  verify: checksums" "stage: {target: host}" "report: ''" "handoff: {mode: none}")
expect_exit 0 "the golden file's checksums verify" "$TENSORINIT" load -f "$m"

# pagecache: checksums by reading through the page cache; ciphertext cannot be served.
m=$(manifest "$tag-pc" "$TEST_TMP/flipped.tensors" "  verify: checksums" "stage: {target: pagecache}" "report: ''" "handoff: {mode: none}")
expect_exit 65 "pagecache: a wrong hash is found" "$TENSORINIT" load -f "$m"
m=$(manifest "$tag-pc" "$FIXTURES/tiny-mixed.tensors" "  verify: checksums" "stage: {target: pagecache}" "report: ''" "handoff: {mode: none}")
expect_exit 0 "pagecache: the golden file verifies" "$TENSORINIT" load -f "$m"
m=$(manifest "$tag-pc" "$key_file" "  key: $KEY" "stage: {target: pagecache}" "report: ''" "handoff: {mode: none}")
expect_exit 66 "pagecache: an encrypted file cannot be served" "$TENSORINIT" load -f "$m"
check "pagecache: says why and what to use" grep -q "cannot serve an encrypted tensorizer file.*use target host or cuda" "$TEST_TMP/stderr"

# cuda (the runtime double, which dumps each device arena when freed): decrypted and verified in
# the pinned staging buffers, byte-exact on the device.
if [ -n "${TENSORINIT_CUDADOUBLE:-}" ]; then
  export TENSORINIT_CUDA_DOUBLE_DEVICES=1 TENSORINIT_CUDA_DOUBLE_DUMP=$TEST_TMP/dump
  mkdir -p "$TEST_TMP/dump"
  m=$(manifest "$tag-cuda" "$key_file" "  key: $KEY" "  verify: checksums" \
    "stage: {target: cuda, chunk_size: 4MiB, readers: 3, memory_limit: 16MiB}" "report: ''" "handoff: {mode: none}")
  expect_exit 0 "cuda: decrypted and verified into device memory" "$TENSORINIT_CUDADOUBLE" load --keep -f "$m"
  python3 - /dev/shm/tensorinit-"$tag"-cuda.json "$TEST_TMP" <<'PY'
import json, sys
t = json.load(open(sys.argv[1])); t["arenas"][0]["path"] = sys.argv[2] + "/dump/cuda0.arena"
json.dump(t, open(sys.argv[2] + "/cuda-table.json", "w"))
PY
  check "cuda: the device arena matches what tensorizer reads" \
    $VERIFY --table "$TEST_TMP/cuda-table.json" --expect "$key_file.expect.json"
  rm -f /dev/shm/tensorinit-"$tag"-cuda.json
  m=$(manifest "$tag-cudawrong" "$key_file" "  key: 0${KEY:1}" "stage: {target: cuda}" "report: ''" "handoff: {mode: none}")
  expect_exit 65 "cuda: a wrong key is refused" "$TENSORINIT_CUDADOUBLE" load -f "$m"
fi

# The same with files the real tensorizer writes now, where it is installed.
py=$(tensorizer_python)
if [ -z "$py" ]; then
  echo "skip - no python with tensorizer and torch (set TENSORIZER_PYTHON): freshly written encrypted files not tested"
else
  expect_exit 0 "the real tensorizer writes encrypted files ($py)" "$py" "$TESTS_DIR/tools/make_tensorizer_fixtures.py" --encrypted "$TEST_TMP/written"
  run_fixtures "$TEST_TMP/written" written
fi

rm -f /dev/shm/tensorinit-"$tag"*
finish
