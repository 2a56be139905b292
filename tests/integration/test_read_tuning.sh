# The read controller (stage/read_controller.*) with everything left to auto: byte-exact loads from
# cold and warm files, its choices in the report; the bench-only discard target.
source "$(dirname "$0")/lib.sh"
model=$TEST_TMP/model
expect_exit 0 "synth writes a sharded model" "$TENSORINIT" synth --size 96MiB --shards 3 --seed 3 "$model"
evict() { python3 -c "import os,sys
for f in sys.argv[1:]:
    fd = os.open(f, os.O_RDONLY); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED); os.close(fd)" "$model"/*.safetensors; }

for state in cold warm; do
  [[ $state == cold ]] && evict || cat "$model"/*.safetensors >/dev/null
  m=$(manifest "auto-$state" "$model" "report: $TEST_TMP/report-$state.json" \
    "handoff: {mode: exec, command: [python3, $TESTS_DIR/tools/verify_table.py]}")
  expect_exit 0 "$state, every read setting auto: byte-exact" "$TENSORINIT" run -f "$m"
  check "$state: the report shows the controller's phases adding up to the load" python3 - "$TEST_TMP/report-$state.json" $state <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
c = r["reads"]
assert c["mode"] in ("direct", "buffered", "splice") and c["readers"] >= 1 and c["request"] >= 4096, c
assert len(c["candidates"]) >= 2, c
# Reads count what they read: O_DIRECT reads start at the chunk's 4 KiB boundary, a little before it.
read = sum(p["bytes"] for p in c["phases"])
assert r["bytes"] <= read <= r["bytes"] * 1.01, (c, r["bytes"])
assert all(p["gbps"] >= 0 and p["seconds"] >= 0 for p in c["phases"])
# Warm into the host arena the lock on its writes is measured too: one candidate is an unlocked twin.
assert "serialised" in c and all("serialised" in x for x in c["candidates"]), c
assert sys.argv[2] == "cold" or sum(not x["serialised"] for x in c["candidates"]) == 1, c
PY
done
check "warm files are read through the page cache only" python3 -c "
import json; c = json.load(open('$TEST_TMP/report-warm.json'))['reads']
assert all(p['mode'] != 'direct' for p in c['phases']), c"

m=$(manifest fixed "$model" "stage: {direct_io: on, chunk_size: 4MiB, readers: 3}" "report: $TEST_TMP/report-fixed.json" \
  "handoff: {mode: exec, command: [python3, $TESTS_DIR/tools/verify_table.py]}")
expect_exit 0 "manifest values win: byte-exact" "$TENSORINIT" run -f "$m"
check "manifest values win: one setting, no probes" python3 -c "
import json; c = json.load(open('$TEST_TMP/report-fixed.json'))['reads']
assert len(c['candidates']) == 1 and len(c['phases']) == 1, c
assert c['request'] == 4 << 20 and c['readers'] == 3 and not c['phases'][0]['probe'], c"

m=$(manifest discard "$model" "stage: {target: discard}" "handoff: {mode: none}" "report: $TEST_TMP/report-discard.json")
expect_exit 0 "discard reads and verifies, keeps nothing" "$TENSORINIT" load -f "$m"
check "discard: the report counts every byte" python3 -c "
import json; r = json.load(open('$TEST_TMP/report-discard.json')); assert r['target'] == 'discard' and r['bytes'] > 90 << 20, r"
check "discard leaves nothing in /dev/shm" no_leftovers discard
m=$(manifest discard-exec "$model" "stage: {target: discard}" "handoff: {mode: exec, command: [true]}")
expect_exit 78 "discard with a handoff is refused" "$TENSORINIT" run -f "$m"
check "the refusal names the fix" grep -q "needs handoff.mode: none" "$TEST_TMP/stderr"

# stage.shared_cursor forces the readers' shared cursor on or off (tests/gpu/run.sh measures the
# cuda target both ways): every candidate is shared, or none is; the load is byte-exact either way.
for sc in on off; do
  evict
  m=$(manifest "cursor-$sc" "$model" "stage: {shared_cursor: $sc}" "report: $TEST_TMP/report-cursor-$sc.json" \
    "handoff: {mode: exec, command: [python3, $TESTS_DIR/tools/verify_table.py]}")
  expect_exit 0 "shared_cursor $sc: byte-exact" "$TENSORINIT" run -f "$m"
  check "shared_cursor $sc: the candidates' shared flags say $sc" python3 -c "
import json; c = json.load(open('$TEST_TMP/report-cursor-$sc.json'))['reads']
assert c['candidates'] and all(x['shared'] == ('$sc' == 'on') for x in c['candidates']), c"
done
finish
