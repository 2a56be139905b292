# What tensorizer 2.12.1 writes beyond data version 4, through the real binary. The files are
# built here byte by byte from tensorizer's serialization.py (no torch needed): data version 5
# (a dimension of 2^32 or more: index entries prefixed by their u32 version, flag bit 1, u64
# dimensions for that tensor in the index and its record header), with CRC-32 and SHA-256 over
# each header (hash values zeroed) and its data; torch.float4_e2m1fn_x2 (F4, last dimension
# doubled in the table, as safetensors writes it). Staged byte-exact with `verify: checksums`;
# a flipped byte is found. Complex128 is "unsupported dtype" (65, not "malformed"); a name that
# is not UTF-8 is refused at index time (65 naming file and position) and the report stays JSON.
source "$(dirname "$0")/lib.sh"
tag=tz5-$$

python3 - "$TEST_TMP" <<'PY'
import hashlib, json, os, struct, sys, zlib
out = sys.argv[1]

def header_and_entry(t, long_shape, hashes=True):
    """The record header (hashes filled in over itself with the values zeroed, then the data) and
    the index entry body, as _TensorHeaderSerializer lays them out."""
    fmt = "Q" if long_shape else "I"
    shape = struct.pack("<B", len(t["shape"])) + b"".join(struct.pack("<" + fmt, d) for d in t["shape"])
    name, dtype = t["name"], t["dtype"]
    mid = struct.pack("<H", len(name)) + name + struct.pack("<B", len(dtype)) + dtype + shape
    hash_section = struct.pack("<HB", 1 + 6 + 34, 2) + struct.pack("<BBI", 0, 4, 0) + struct.pack("<BB", 1, 32) + bytes(32)
    if not hashes:
        hash_section = struct.pack("<HB", 1, 0)
    body = struct.pack("<HB", 0, 0) + mid + hash_section + struct.pack("<q", len(t["data"]))
    header = bytearray(struct.pack("<Q", 8 + len(body)) + body)
    if hashes:
        at = 8 + 3 + len(mid) + 3  # the CRC-32 value
        crc = zlib.crc32(t["data"], zlib.crc32(bytes(header)))
        sha = hashlib.sha256(bytes(header) + t["data"]).digest()
        header[at + 2:at + 6] = struct.pack("<I", crc)
        header[at + 8:at + 40] = sha
    entry_mid = struct.pack("<H", len(name)) + name + b"\0" + struct.pack("<B", len(dtype)) + dtype + shape
    return bytes(header), entry_mid

def tensorizer_file(path, tensors, version, flags=0):
    index_len = 4096
    at = 73 + index_len
    index, records = b"", b""
    for t in tensors:
        long_shape = any(d >= 1 << 32 for d in t["shape"])
        header, entry = header_and_entry(t, long_shape)
        if flags & 2:
            index += struct.pack("<I", 5 if long_shape else 1)
        index += entry + struct.pack("<QQQ", at, at + len(header), len(t["data"]))
        records += header + t["data"]
        at += len(header) + len(t["data"])
    head = b"|TZR|" + struct.pack("<I", version) + struct.pack("<Q", flags) + bytes(24)
    head += struct.pack("<QQQQ", sum(len(t["data"]) for t in tensors), 0, len(tensors), index_len)
    open(path, "wb").write(head + index.ljust(index_len, b"\0") + records + bytes(8))

rand = lambda n, seed: bytes((i * 131 + seed * 17 + (i >> 3)) & 0xFF for i in range(n))
v5 = [
    {"name": b"w", "dtype": b"<f4", "shape": [3, 5], "data": rand(60, 1)},
    {"name": b"long", "dtype": b"|u1", "shape": [1 << 32, 0], "data": b""},
    {"name": b"q", "dtype": b"|V1\0torch.float4_e2m1fn_x2", "shape": [2, 3], "data": rand(6, 2)},
    {"name": b".b", "dtype": b"<V2\0torch.bfloat16", "shape": [7], "data": rand(14, 3)},
]
tensorizer_file(f"{out}/v5.tensors", v5, 5, 2)
table = {"w": ("F32", [3, 5]), "long": ("U8", [1 << 32, 0]), "q": ("F4", [2, 6]), "b": ("BF16", [7])}
expect = [{"name": n, "dtype": d, "shape": s, "sha256": hashlib.sha256(t["data"]).hexdigest()}
          for (n, (d, s)), t in zip(table.items(), v5)]
json.dump({"tensors": expect}, open(f"{out}/v5.tensors.expect.json", "w"))
b = bytearray(open(f"{out}/v5.tensors", "rb").read())
b[b.rindex(rand(60, 1)) + 7] ^= 1
open(f"{out}/v5-flipped.tensors", "wb").write(b)
tensorizer_file(f"{out}/complex.tensors", [{"name": b"c", "dtype": b"<c16", "shape": [2], "data": bytes(32)}], 1)
tensorizer_file(f"{out}/badname.tensors", [{"name": b"ok", "dtype": b"|u1", "shape": [1], "data": b"a"},
                                           {"name": b"caf\xe9", "dtype": b"|u1", "shape": [1], "data": b"b"}], 1)
PY

# Version 5 with every checksum verified, into a stand-in server that checks each tensor.
m=$(manifest "$tag-v5" "$TEST_TMP/v5.tensors" "  verify: checksums" "stage: {target: host}" "report: ''" \
  "handoff: {mode: exec, command: [python3, $TESTS_DIR/tools/verify_table.py, --expect, $TEST_TMP/v5.tensors.expect.json]}")
expect_exit 0 "data version 5: staged and handed over byte-exact, checksums verified" "$TENSORINIT" run -f "$m"
check "v5: the server verified every tensor" grep -q "verified 4 tensors, 80 bytes, byte-exact" "$TEST_TMP/stdout"
rm -f /dev/shm/tensorinit-"$tag"-v5*
expect_exit 0 "v5: inspect --json" "$TENSORINIT" inspect --json "$TEST_TMP/v5.tensors"
check "v5: the long shape and the doubled F4 dimension are listed" python3 -c '
import json, sys
t = {t["name"]: t for t in json.load(open(sys.argv[1]))["tensors"]}
assert t["long"]["shape"] == [4294967296, 0] and t["long"]["bytes"] == 0, t["long"]
assert t["q"]["dtype"] == "F4" and t["q"]["shape"] == [2, 6] and t["q"]["bytes"] == 6, t["q"]
' "$TEST_TMP/stdout"
m=$(manifest "$tag-flip" "$TEST_TMP/v5-flipped.tensors" "  verify: checksums" "stage: {target: host}" "report: ''" \
  "handoff: {mode: none}")
expect_exit 65 "v5: a flipped data byte fails its checksum" "$TENSORINIT" load -f "$m"
check "v5: the error names file and tensor" grep -q "^tensorinit: error: $TEST_TMP/v5-flipped.tensors: tensor 'w': CRC-32 mismatch" "$TEST_TMP/stderr"
check "v5: nothing left in /dev/shm" no_leftovers "$tag-flip"

expect_exit 65 "complex128: refused" "$TENSORINIT" inspect "$TEST_TMP/complex.tensors"
check "complex128: 'unsupported dtype', not 'malformed'" \
  grep -q "^tensorinit: error: $TEST_TMP/complex.tensors: tensor 'c': unsupported dtype complex128" "$TEST_TMP/stderr"
check "complex128: not called malformed" not grep -q malformed "$TEST_TMP/stderr"

# A name that is not UTF-8: 65 at index time (it used to reach the report's JSON and exit 70).
m=$(manifest "$tag-name" "$TEST_TMP/badname.tensors" "stage: {target: host}" "report: $TEST_TMP/name-report.json" \
  "handoff: {mode: none}")
expect_exit 65 "a name that is not UTF-8: refused at index time" "$TENSORINIT" load -f "$m"
check "bad name: one error line naming the file and the tensor's position" \
  test "$(grep -c "^tensorinit: error: .*$TEST_TMP/badname.tensors: .*tensor 2 of 2: its name is not valid UTF-8" "$TEST_TMP/stderr")" = 1
check "bad name: the report is JSON and says why" python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
assert r["ok"] is False and "not valid UTF-8" in r["error"], r
' "$TEST_TMP/name-report.json"
check "bad name: nothing left in /dev/shm" no_leftovers "$tag-name"

rm -f /dev/shm/tensorinit-"$tag"*
finish
