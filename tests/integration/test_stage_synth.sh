# A synthesized sharded model through every staging path, byte-exact; shm limits; SIGTERM.
source "$(dirname "$0")/lib.sh"
model=$TEST_TMP/model
expect_exit 0 "synth writes a sharded model" "$TENSORINIT" synth --size 96MiB --shards 3 --seed 7 "$model"
check "index.json lists every tensor" python3 -c "import json,sys; j=json.load(open('$model/model.safetensors.index.json')); assert len(j['weight_map'])>20 and j['metadata']['total_size']==96*2**20"
expect_exit 0 "inspect reads the sharded model" "$TENSORINIT" inspect --json "$model"

for dio in on off auto; do
  for chunk in 4MiB 1MiB; do
    m=$(manifest "synth-$dio" "$model" "stage: {direct_io: $dio, chunk_size: $chunk, readers: 3}" "report: ''" \
      "handoff: {mode: exec, command: [python3, $TESTS_DIR/tools/verify_table.py]}")
    expect_exit 0 "direct_io $dio, chunk $chunk: byte-exact" "$TENSORINIT" run -f "$m"
  done
done

# Deterministic per seed, different across seeds.
"$TENSORINIT" synth --size 1MiB --seed 7 "$TEST_TMP/a" 2>/dev/null
"$TENSORINIT" synth --size 1MiB --seed 7 "$TEST_TMP/b" 2>/dev/null
"$TENSORINIT" synth --size 1MiB --seed 8 "$TEST_TMP/c" 2>/dev/null
check "synth is deterministic per seed" cmp -s "$TEST_TMP/a/model.safetensors" "$TEST_TMP/b/model.safetensors"
check "seeds differ" not cmp -s "$TEST_TMP/a/model.safetensors" "$TEST_TMP/c/model.safetensors"
check "values look like trained weights" python3 - "$TEST_TMP/a/model.safetensors" <<'PY'
import json, struct, sys, statistics
data = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", data[:8])[0]
h = json.loads(data[8:8 + n])
name = next(k for k in h if k.endswith("q_proj.weight"))
b, e = h[name]["data_offsets"]
raw = data[8 + n + b: 8 + n + e]
vals = [struct.unpack("<f", b"\0\0" + raw[i:i + 2])[0] for i in range(0, len(raw), 2)]
sd = statistics.pstdev(vals)
assert 0.015 < sd < 0.025 and abs(statistics.mean(vals)) < 0.002, (sd, statistics.mean(vals))
assert len(set(vals)) > 100
PY

# Too little /dev/shm (Docker's default is 64 MiB): a clear error before any read, nothing left.
if unshare -m true 2>/dev/null; then
  m=$(manifest synth-small-shm "$model" "report: ''" "handoff: {mode: none}")
  expect_exit 74 "too little /dev/shm is refused up front" \
    unshare -m sh -c "mount -t tmpfs -o size=16m tmpfs /dev/shm && exec $TENSORINIT load -f $m"
  check "the error names the fix" grep -q -- "--shm-size" "$TEST_TMP/stderr"
else
  echo "skip - unshare -m unavailable (not root)"
fi

# SIGTERM while staging: stops promptly, exits 143, removes the arena.
"$TENSORINIT" synth --size 768MiB "$TEST_TMP/big" 2>/dev/null
m=$(manifest synth-term "$TEST_TMP/big" "stage: {readers: 1, chunk_size: 4MiB, direct_io: on}" "report: ''" "handoff: {mode: none}")
"$TENSORINIT" load -f "$m" 2>"$TEST_TMP/term.err" & pid=$!
sleep 0.3
kill -TERM $pid
code=0; wait $pid || code=$?
if [ $code = 143 ]; then ok "SIGTERM during staging exits 143"; else not_ok "SIGTERM during staging: exit $code"; cat "$TEST_TMP/term.err"; fi
check "SIGTERM leaves nothing in /dev/shm" no_leftovers synth-term

# The same in signal mode as PID 1, server started early: staging stops, the server gets SIGTERM,
# the arena goes, and tensorinit exits within a second or two with 143.
m=$(manifest synth-sigterm "$TEST_TMP/big" "stage: {readers: 1, chunk_size: 4MiB, direct_io: on}" "report: ''" \
  "handoff: {mode: signal, start: early, grace: 5s, command: [sleep, '60']}")
unshare -fp --mount-proc "$TENSORINIT" run -f "$m" 2>"$TEST_TMP/term2.err" & pid=$!
sleep 0.4
started=$(date +%s%N)
kill -TERM "$(pgrep -P $pid)"  # tensorinit, PID 1 of the new namespace (unshare forwards nothing)
code=0; wait $pid || code=$?
elapsed_ms=$(( ($(date +%s%N) - started) / 1000000 ))
if [ $code = 143 ]; then ok "signal mode: SIGTERM during staging exits 143"; else not_ok "signal mode: SIGTERM during staging: exit $code"; cat "$TEST_TMP/term2.err"; fi
if [ $elapsed_ms -lt 3000 ]; then ok "signal mode: stopped within ${elapsed_ms} ms"; else not_ok "signal mode: took ${elapsed_ms} ms to stop"; fi
check "signal mode: SIGTERM leaves nothing in /dev/shm" no_leftovers synth-sigterm
rm -rf "$TEST_TMP/big"
rm -f /dev/shm/tensorinit-synth-*
finish
