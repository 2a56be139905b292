# `tensorinit synth --format tensorizer`: the same tensors and values as the safetensors synth
# (same seed), loaded byte-exact with `verify: checksums`, sharded as a directory of *.tensors;
# read back by tensorizer's own TensorDeserializer (hashes verified) where it is installed.
source "$(dirname "$0")/lib.sh"
tag=tzs-$$
st=$TEST_TMP/st tz=$TEST_TMP/tz
expect_exit 0 "synth safetensors" "$TENSORINIT" synth --size 24MiB --shards 2 --seed 5 "$st"
expect_exit 0 "synth tensorizer (same size, shards, seed)" "$TENSORINIT" synth --size 24MiB --shards 2 --seed 5 --format tensorizer "$tz"
check "two .tensors shards and no index" test "$(ls "$tz")" = "$(printf 'model-00001-of-00002.tensors\nmodel-00002-of-00002.tensors')"
expect_exit 64 "an unknown --format is a usage error" "$TENSORINIT" synth --size 1MiB --format gguf "$TEST_TMP/x"

# What the safetensors synth holds, as an expect list (names, dtypes, shapes, SHA-256 per tensor).
python3 - "$st" "$TEST_TMP/expect.json" <<'PY'
import hashlib, json, os, struct, sys
out = []
for name in sorted(os.listdir(sys.argv[1])):
    if not name.endswith(".safetensors"):
        continue
    b = open(os.path.join(sys.argv[1], name), "rb").read()
    n = struct.unpack_from("<Q", b)[0]
    for k, v in json.loads(b[8:8 + n]).items():
        if k == "__metadata__":
            continue
        lo, hi = v["data_offsets"]
        out.append({"name": k, "dtype": v["dtype"], "shape": v["shape"],
                    "sha256": hashlib.sha256(b[8 + n + lo:8 + n + hi]).hexdigest()})
json.dump({"tensors": out}, open(sys.argv[2], "w"))
PY
m=$(manifest "$tag" "$tz" "  verify: checksums" "stage: {target: host, chunk_size: 1MiB, readers: 3}" "report: ''" \
  "handoff: {mode: exec, command: [python3, $TESTS_DIR/tools/verify_table.py, --expect, $TEST_TMP/expect.json]}")
expect_exit 0 "the tensorizer synth loads with checksums verified" "$TENSORINIT" run -f "$m"
check "every tensor equals the safetensors synth's" grep -q "verified .* byte-exact" "$TEST_TMP/stdout"
rm -f /dev/shm/tensorinit-"$tag"*

py=$(tensorizer_python)
if [ -z "$py" ]; then
  echo "skip - no python with tensorizer and torch (set TENSORIZER_PYTHON): TensorDeserializer read-back not tested"
else
  check "tensorizer's TensorDeserializer reads our files, hashes verified, values as expected ($py)" "$py" - "$tz" "$TEST_TMP/expect.json" <<'PY'
import hashlib, json, os, sys
import torch
from tensorizer import TensorDeserializer
want = {t["name"]: t for t in json.load(open(sys.argv[2]))["tensors"]}
seen = set()
for name in sorted(os.listdir(sys.argv[1])):
    d = TensorDeserializer(os.path.join(sys.argv[1], name), device="cpu", verify_hash=True)
    for k, v in d.items():
        raw = v.detach().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
        w = want[k]
        assert list(v.shape) == w["shape"] and hashlib.sha256(raw).hexdigest() == w["sha256"], k
        seen.add(k)
    d.close()
assert seen == set(want), set(want) ^ seen
print(f"TensorDeserializer read {len(seen)} tensors")
PY
fi
finish
