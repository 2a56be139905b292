# Malformed and truncated safetensors files against the real binary. Malformed (overlap, oversized
# header, bad JSON, duplicate key, shape mismatch, a header that is not UTF-8): inspect and load
# exit 65 with one error line naming the file, nothing left in /dev/shm, no server started; the
# report and plan --json stay JSON. Truncated: the candidate is
# unusable (plan/load exit 66 when it is the only one; a second, good candidate is used instead).
source "$(dirname "$0")/lib.sh"
golden=$FIXTURES/tiny-f16.safetensors
tag=malformed-$$   # model names unique per run, so a leftover arena cannot be someone else's

# The files, built byte by byte: u64 N | header | data.
python3 - "$TEST_TMP" "$golden" <<'PY'
import struct, sys
out, golden = sys.argv[1], sys.argv[2]
def st(header, data=b""):
    h = header.encode()
    return struct.pack("<Q", len(h)) + h + data
t = lambda dtype, shape, b, e: '{"dtype":"%s","shape":%s,"data_offsets":[%d,%d]}' % (dtype, shape, b, e)
files = {
    "overlap": st('{"a":%s,"b":%s}' % (t("F32", "[2]", 0, 8), t("F16", "[4]", 4, 12)), bytes(12)),
    "oversized": struct.pack("<Q", 100_000_001) + b'{"a":' + bytes(64),
    "badjson": st('{"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}', bytes(4)),
    "dupkey": st('{"a":%s,"a":%s}' % (t("F16", "[2]", 0, 4), t("F16", "[2]", 0, 4)), bytes(4)),
    "shape": st('{"a":%s}' % t("F16", "[2,2]", 0, 6), bytes(6)),
}
# Not UTF-8 (the format requires it), and valid UTF-8 whose JSON error nlohmann quotes cut inside
# a character ("tru" + the first byte of the euro sign).
raw = lambda h, data=b"": struct.pack("<Q", len(h)) + h + data
files["badutf8"] = raw(b'{"a\xff":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}', bytes(4))
files["cutchar"] = raw('{"a":tru\u20ac}'.encode(), bytes(4))
for name, data in files.items():
    open(f"{out}/{name}.safetensors", "wb").write(data)
good = open(golden, "rb").read()
open(f"{out}/truncated.safetensors", "wb").write(good[:-100])  # cut inside the data section
open(f"{out}/good.safetensors", "wb").write(good)
PY

# manifest2 NAME PATH [PATH...]: one image source per path, handoff none, no report.
manifest2() {
  local name=$1; shift
  {
    echo "version: 1"
    echo "model:"
    echo "  name: $name"
    echo "  sources:"
    for p in "$@"; do echo "    - {type: image, path: \"$p\"}"; done
    echo "handoff: {mode: none}"
    echo 'report: ""'
  } >"$TEST_TMP/$name.yaml"
  echo "$TEST_TMP/$name.yaml"
}

# one_error_line FILE: stderr is exactly one `tensorinit: error: ...` line that names FILE.
one_error_line() {
  local file=$1 lines errors
  lines=$(wc -l <"$TEST_TMP/stderr")
  errors=$(grep -c '^tensorinit: error: ' "$TEST_TMP/stderr" || true)
  if [ "$errors" = 1 ] && grep '^tensorinit: error: ' "$TEST_TMP/stderr" | grep -qF -- "$file"; then
    [ "$lines" = 1 ] || echo "    (note: $lines stderr lines, one of them the error)"
    return 0
  fi
  sed 's/^/    stderr: /' "$TEST_TMP/stderr" | tail -5
  return 1
}

for kind in overlap oversized badjson dupkey shape badutf8 cutchar; do
  file=$TEST_TMP/$kind.safetensors
  model=$tag-$kind
  expect_exit 65 "inspect $kind" "$TENSORINIT" inspect "$file"
  check "inspect $kind: one error line naming the file" one_error_line "$file"
  m=$(manifest2 "$model" "$file")
  expect_exit 65 "load $kind" "$TENSORINIT" load -f "$m"
  check "load $kind: one error line naming the file" one_error_line "$file"
  check "load $kind: nothing in /dev/shm" no_leftovers "$model"
  rm -f "$TEST_TMP/server-started"
  expect_exit 65 "run $kind" "$TENSORINIT" run -f "$m" -- touch "$TEST_TMP/server-started"
  check "run $kind: no server started" not test -e "$TEST_TMP/server-started"
  check "run $kind: nothing in /dev/shm" no_leftovers "$model"
done

# Regression: bytes from a file that are not UTF-8 reached JSON output (report, plan --json), whose
# writer threw: exit 70. Now 65 at index time, and the JSON is written.
for kind in badutf8 cutchar; do
  file=$TEST_TMP/$kind.safetensors
  m=$(manifest2 "$tag-$kind-r" "$file")
  expect_exit 65 "load $kind --report" "$TENSORINIT" load -f "$m" --report "$TEST_TMP/$kind-report.json"
  check "load $kind: one error line naming the file" one_error_line "$file"
  check "load $kind: the report is JSON with the error" python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
assert r["ok"] is False and r["exit_code"] == 65 and sys.argv[2] in r["error"], r
' "$TEST_TMP/$kind-report.json" "$file"
  m=$(manifest2 "$tag-$kind-p" "$file" "$TEST_TMP/good.safetensors")
  expect_exit 0 "plan --json past a $kind candidate" "$TENSORINIT" plan -f "$m" --json
  check "plan --json $kind: JSON naming the reason" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
d = d.get("decision", d)
assert any(not c["usable"] and ("UTF-8" in c["reason"] or "JSON" in c["reason"]) for c in d["candidates"]), d
' "$TEST_TMP/stdout"
done
expect_exit 65 "inspect badutf8" "$TENSORINIT" inspect "$TEST_TMP/badutf8.safetensors"
check "badutf8: says the header is not UTF-8, with the offset" grep -q "header is not valid UTF-8 (byte 3 of the header, file offset 11)" "$TEST_TMP/stderr"

# The same files inside a model directory: the error names the file, not just the directory.
mkdir -p "$TEST_TMP/dir-dup"
cp "$TEST_TMP/dupkey.safetensors" "$TEST_TMP/dir-dup/model.safetensors"
expect_exit 65 "inspect a directory holding a malformed file" "$TENSORINIT" inspect "$TEST_TMP/dir-dup"
check "directory: the error names the file" one_error_line "$TEST_TMP/dir-dup/model.safetensors"

# Truncated, alone: unusable, exit 66.
truncated=$TEST_TMP/truncated.safetensors
m=$(manifest2 "$tag-trunc" "$truncated")
expect_exit 66 "plan with only a truncated candidate" "$TENSORINIT" plan -f "$m"
check "plan: the reason names the file and says incomplete" grep -q "incomplete.*$truncated\|$truncated.*incomplete" "$TEST_TMP/stderr" "$TEST_TMP/stdout"
expect_exit 66 "load with only a truncated candidate" "$TENSORINIT" load -f "$m"
check "load truncated: one error line naming the file" one_error_line "$truncated"
check "load truncated: nothing in /dev/shm" no_leftovers "$tag-trunc"
expect_exit 66 "inspect a truncated file" "$TENSORINIT" inspect "$truncated"

# Truncated first, good second: the good one is used.
good=$TEST_TMP/good.safetensors
m=$(manifest2 "$tag-fallback" "$truncated" "$good")
expect_exit 0 "plan falls back past a truncated candidate" "$TENSORINIT" plan -f "$m" --json
check "plan chose the good candidate" python3 - "$TEST_TMP/stdout" "$good" <<'PY'
import json, sys
plan = json.load(open(sys.argv[1]))
d = plan.get("decision", plan)
assert d["chosen"]["path"] == sys.argv[2], d  # plan --json and the report share one shape
bad = [c for c in d["candidates"] if not c["usable"]]
assert len(bad) == 1 and "incomplete" in bad[0]["reason"], d["candidates"]
PY
expect_exit 0 "load falls back past a truncated candidate" "$TENSORINIT" load -f "$m" --report "$TEST_TMP/fallback.json"
check "load used the good candidate" python3 - "$TEST_TMP/fallback.json" "$good" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["ok"] is True, r
assert r["decision"]["chosen"]["path"] == sys.argv[2], r["decision"]
assert r["tensors"] == 10, r
PY
check "load fallback: nothing left in /dev/shm" no_leftovers "$tag-fallback"

# A malformed candidate before a good one: the good one is used too (65 only when nothing is usable).
m=$(manifest2 "$tag-skipbad" "$TEST_TMP/overlap.safetensors" "$good")
expect_exit 0 "load skips a malformed candidate when a good one exists" "$TENSORINIT" load -f "$m"
check "skipbad: nothing left in /dev/shm" no_leftovers "$tag-skipbad"

rm -f /dev/shm/tensorinit-"$tag"*
finish
