# The unlucky operator points the report or the ready file at a name tensorinit owns or reads:
# the arena or the tensor table (its own or another instance's), a name lock, a weight file.
# Before the fix the report was renamed over the arena after staging and the server was exec'd on
# the report's JSON as its weights (exit 0); over a weight file it destroyed the model. Such a
# path is refused before anything starts (78 for the manifest, 64 for --report), no server runs,
# nothing is written over and nothing is left in the shm dir.
source "$(dirname "$0")/lib.sh"
export TENSORINIT_SHM_DIR=$TEST_TMP/shm
shm=$TENSORINIT_SHM_DIR
mkdir -p "$shm"
model=$TEST_TMP/model
"$TENSORINIT" synth --size 2MiB --shards 2 --seed 5 "$model" 2>/dev/null
weights_sum() { cat "$model"/* | sha256sum; }
before=$(weights_sum)
ran=$TEST_TMP/server-ran
server="handoff: {mode: exec, command: [sh, -c, 'touch $ran']}"
only_kept() {  # only_kept NAME...: the shm dir holds exactly these names
  [ "$(ls -A "$shm" | sort | tr '\n' ' ')" = "$*" ]
}

for case in "arena:$shm/tensorinit-out-0" "table:$shm/tensorinit-out.json" "lock:$shm/.tensorinit-out.lock" \
            "weights:$model/model-00001-of-00002.safetensors" "new-in-weights:$model/report.json"; do
  what=${case%%:*} path=${case#*:}
  rm -f "$ran"
  m=$(manifest out "$model" "report: $path" "$server")
  expect_exit 78 "report at the $what path: refused" "$TENSORINIT" run -f "$m"
  check "report at the $what path: the error names the report" grep -q "tensorinit: error: .*report" "$TEST_TMP/stderr"
  check "report at the $what path: no server started" test ! -e "$ran"
  check "report at the $what path: nothing left in the shm dir" only_kept ""
  check "report at the $what path: the weights are untouched" test "$(weights_sum)" = "$before" -a ! -e "$model/report.json"
done

# Another instance's arena and table (kept by load --keep): neither replaced nor removed.
m=$(manifest other "$model" "report: ''" "handoff: {mode: none}")
expect_exit 0 "another model is loaded and kept" "$TENSORINIT" load -f "$m" --keep
m=$(manifest out "$model" "report: $shm/tensorinit-other-0" "$server")
expect_exit 78 "report over another instance's arena: refused" "$TENSORINIT" run -f "$m"
m=$(manifest out "$model" "report: ''" \
  "handoff: {mode: signal, command: [sh, -c, 'touch $ran'], ready: {tcp: '127.0.0.1:1', timeout: 2s, file: $shm/tensorinit-other.json}}")
expect_exit 78 "ready file over another instance's table: refused" "$TENSORINIT" run -f "$m"
check "the other instance's table and arena are intact" env TENSORINIT_MODEL_DIR="$model" \
  $VERIFY --table "$shm/tensorinit-other.json"
m=$(manifest out "$model" "handoff: {mode: none}")
expect_exit 64 "load --report over a weight file: refused" "$TENSORINIT" load -f "$m" --report "$model/model-00002-of-00002.safetensors"
check "the weights are untouched" test "$(weights_sum)" = "$before"
rm -f "$shm"/tensorinit-other* "$shm"/.tensorinit-other*

# Paths of their own still work: beside the model, in the shm dir under another name.
rm -f "$ran"
m=$(manifest out "$model" "report: $TEST_TMP/report.json" "$server")
expect_exit 0 "a report beside the model: runs" "$TENSORINIT" run -f "$m"
check "the server ran" test -e "$ran"
m=$(manifest out "$model" "report: $shm/report.json" "handoff: {mode: none}")
expect_exit 0 "a report in the shm dir under a name of its own: loads" "$TENSORINIT" load -f "$m"
rm -rf "$shm"
finish
