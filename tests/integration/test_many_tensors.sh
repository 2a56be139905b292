# Issue 15 part 6: a model of 100,000 tiny tensors (the per-expert weights and scales of a large
# mixture of experts), sharded, through host and pagecache, byte-exact; a SIGTERM during its load
# is honoured and leaves nothing behind. Not timed: the bounds are the suite's own time limits,
# which the quadratic index, read plan and table (100,000 tensors: 418 s to honour a SIGTERM)
# could not meet; the curve is tests/bench/tensor_count.sh's.
source "$(dirname "$0")/lib.sh"
model=$TEST_TMP/model
expect_exit 0 "synth writes 100,000 tensors in 3 shards" \
  timeout 120 "$TENSORINIT" synth --size 400000 --dtype f32 --tensors 100000 --shards 3 "$model"
check "the index lists every tensor" python3 -c "import json; assert len(json.load(open('$model/model.safetensors.index.json'))['weight_map']) == 100000"

for target in host pagecache; do
  m=$(manifest "many-$target" "$model" "stage: {target: $target}" "report: $TEST_TMP/$target.json" \
    "handoff: {mode: exec, command: [python3, $TESTS_DIR/tools/verify_table.py]}")
  expect_exit 0 "$target: 100,000 tensors byte-exact" timeout 120 "$TENSORINIT" run -f "$m"
  check "$target: the report counts them" python3 -c "import json; assert json.load(open('$TEST_TMP/$target.json'))['tensors'] == 100000"
done

# SIGTERM while it loads (the moment varies; a load that finished first exits 0): 143, nothing left.
m=$(manifest many-stop "$model" "report: ''" "handoff: {mode: none}")
for delay in 0.05 0.2 0.5; do
  "$TENSORINIT" load -f "$m" 2>"$TEST_TMP/stop.err" &
  pid=$!
  sleep "$delay"
  kill -TERM "$pid" 2>/dev/null || true
  code=0
  timeout 60 tail --pid="$pid" -f /dev/null || code=timeout
  wait "$pid" || code=$?
  case $code in
    0|143) ok "SIGTERM after ${delay}s: exit $code" ;;
    *) not_ok "SIGTERM after ${delay}s: exit $code"; tail -3 "$TEST_TMP/stop.err" ;;
  esac
  check "SIGTERM after ${delay}s: nothing left in /dev/shm" no_leftovers many-stop
done
finish
