# Files that change during a load, pagecache paths the server cannot read, a header declaring more
# than the target holds, and a candidate that cannot be examined:
# 1. a shard rewritten in place mid-load (same size, other bytes): 65 naming it, nothing left;
# 2. a same-size model swapped in by flipping a `current` symlink after the plan: the weights
#    staged are the ones indexed (byte-exact against the old files);
# 3. an encrypted tensorizer file from http with target pagecache: 66, nothing the cache trusts;
# 4. a sparse file declaring a 1 TiB tensor: a clear error naming the size, under a 2 GiB address
#    space limit (the read plan is not built first);
# 5. a symlink loop named *.safetensors in a volume, then a good image: the good one is used and
#    the report says why the volume was not.
# "Mid-load" is an event, not a sleep: tensorinit is stopped (SIGSTOP) when it logs the chosen
# source (plan and index done), and the change is made only while /proc/PID/io shows it has read
# less than the model (so staging has not finished and its final check is still ahead).
source "$(dirname "$0")/lib.sh"
tag=fc-$$

# start_stopped CMD...: runs CMD in the background (sets $pid), its stderr through a FIFO into
# $TEST_TMP/err, and stops it (SIGSTOP) as soon as it logs the chosen source.
start_stopped() {
  rm -f "$TEST_TMP/err.fifo" "$TEST_TMP/err"
  mkfifo "$TEST_TMP/err.fifo"
  "$@" >/dev/null 2>"$TEST_TMP/err.fifo" &
  pid=$!
  exec 3<"$TEST_TMP/err.fifo"
  local line
  while IFS= read -r line <&3; do
    echo "$line" >>"$TEST_TMP/err"
    case $line in "tensorinit: source: "*) kill -STOP $pid 2>/dev/null || true; break ;; esac
  done
  cat <&3 >>"$TEST_TMP/err" &
  drain=$!
  exec 3<&-
}
bytes_read() { awk '/^rchar:/ { print $2 }' "/proc/$pid/io" 2>/dev/null || echo 0; }
finish_stopped() {  # resumes $pid; sets $code
  kill -CONT $pid 2>/dev/null || true
  code=0
  wait $pid || code=$?
  wait $drain || true
}

"$TENSORINIT" synth --size 64MiB --seed 1 "$TEST_TMP/v1" 2>/dev/null
"$TENSORINIT" synth --size 64MiB --seed 2 "$TEST_TMP/v2" 2>/dev/null
size=$(stat -c %s "$TEST_TMP/v1/model.safetensors")
check "two models of one size and header, other bytes" test "$size" = "$(stat -c %s "$TEST_TMP/v2/model.safetensors")"
slow="stage: {readers: 1, chunk_size: 4KiB, direct_io: off}"

# 1. Rewritten in place mid-load: read in whole 4 KiB chunks, and on the readers' shared cursor
#    (page-cache reads into the host arena: 256 KiB parts of 16 MiB chunks, stage/read_cursor.hpp),
#    and the cuda target on the shared cursor (4 KiB parts into the pinned ring, the strict CUDA
#    runtime double standing in for cudart).
cuda_how="stage: {target: cuda, readers: 1, chunk_size: 4KiB, shared_cursor: on, direct_io: off}"
for how in "$slow" "stage: {readers: 1, direct_io: off}" "$cuda_how"; do
bin=$TENSORINIT
[ "$how" = "$cuda_how" ] && bin=${TENSORINIT_CUDADOUBLE:?run through ctest (tests/CMakeLists.txt passes it)}
done_it=0
for attempt in 1 2 3 4 5; do
  mkdir -p "$TEST_TMP/m" && cp "$TEST_TMP/v1/model.safetensors" "$TEST_TMP/m/"
  m=$(manifest "$tag-inplace" "$TEST_TMP/m" "$how" "report: ''" "handoff: {mode: none}")
  start_stopped "$bin" load -f "$m"
  if [ "$(bytes_read)" -lt "$size" ]; then
    dd if="$TEST_TMP/v2/model.safetensors" of="$TEST_TMP/m/model.safetensors" bs=1M conv=notrunc status=none
    finish_stopped
    if [ $code = 65 ]; then ok "rewritten in place mid-load ($how): exit 65"; else not_ok "rewritten mid-load: exit $code, wanted 65"; fi
    check "one error line naming the file and the change" \
      test "$(grep -c "^tensorinit: error: $TEST_TMP/m/model.safetensors: changed while it was being read" "$TEST_TMP/err")" = 1
    check "rewritten mid-load: nothing left in /dev/shm" no_leftovers "$tag-inplace"
    done_it=1
    break
  fi
  finish_stopped  # staging was already done: try again
done
[ $done_it = 1 ] || not_ok "rewritten mid-load: never caught tensorinit before it had read the model (5 tries)"
done

# 2. The `current` symlink flipped to a same-size model after the plan: the indexed files are staged.
ln -sfn v1 "$TEST_TMP/current"
done_it=0
for attempt in 1 2 3 4 5; do
  ln -sfn v1 "$TEST_TMP/current"
  m=$(manifest "$tag-flip" "$TEST_TMP/current" "$slow" "report: ''" \
    "handoff: {mode: exec, command: [env, TENSORINIT_MODEL_DIR=$TEST_TMP/v1, python3, $TESTS_DIR/tools/verify_table.py]}")
  start_stopped "$TENSORINIT" run -f "$m"
  if [ "$(bytes_read)" -lt "$size" ]; then
    ln -sfn v2 "$TEST_TMP/current.new" && mv -T "$TEST_TMP/current.new" "$TEST_TMP/current"
    finish_stopped
    if [ $code = 0 ]; then ok "symlink flipped after the plan: staged the indexed model, byte-exact"; else
      not_ok "symlink flipped after the plan: exit $code"; tail -3 "$TEST_TMP/err"; fi
    done_it=1
    break
  fi
  finish_stopped
done
[ $done_it = 1 ] || not_ok "symlink flip: never caught tensorinit before it had read the model (5 tries)"
rm -f /dev/shm/tensorinit-"$tag"-flip* /dev/shm/.tensorinit-"$tag"-flip*

# 3. An encrypted tensorizer file over http with target pagecache: the cache would hold ciphertext.
if command -v nginx >/dev/null || [ -x /usr/sbin/nginx ]; then
  nginx="bash $TESTS_DIR/tools/nginx.sh"
  mkdir -p "$TEST_TMP/www/enc"
  cp "$FIXTURES/tensorizer-key.tensors" "$TEST_TMP/www/enc/model.tensors"
  port=$($nginx start "$TEST_TMP/www" "$TEST_TMP/nginx")
  trap '$nginx stop "$TEST_TMP/nginx"' EXIT
  KEY=5be7c4f1a09d3e26b8f05a7c1d92e4b36a0f8c5d7e19b2a4c6d8e0f1a3b5c7d9  # make_tensorizer_fixtures.py TEST_KEY
  cat >"$TEST_TMP/enc.yaml" <<EOF
version: 1
model:
  name: $tag-enc
  format: tensorizer
  key: \${TZ_TEST_KEY}
  cache: $TEST_TMP/cache
  sources:
    - {type: http, url: "http://127.0.0.1:$port/enc/", files: [model.tensors], retries: 1, stall_timeout: 2s}
stage: {target: pagecache}
report: ''
handoff: {mode: none}
EOF
  TZ_TEST_KEY=$KEY expect_exit 66 "encrypted over http, target pagecache: refused" "$TENSORINIT" load -f "$TEST_TMP/enc.yaml"
  check "says why and what to use" grep -q "cannot serve an encrypted tensorizer file.*use target host or cuda" "$TEST_TMP/stderr"
  check "the key is not in the output" not grep -qi "$KEY" "$TEST_TMP/stderr"
  check "nothing in the cache a later start would trust" not sh -c "ls -A '$TEST_TMP/cache/$tag-enc' 2>/dev/null | grep -q tensorinit.json"
  $nginx stop "$TEST_TMP/nginx"
  trap - EXIT
else
  echo "skip - nginx not installed"
fi

# 4. A sparse file declaring a 1 TiB tensor: the target's room is checked before anything sized by
#    the header is allocated (4 KiB chunks: the read plan of 1 TiB would be about 15 GB).
mkdir -p "$TEST_TMP/huge"
python3 - "$TEST_TMP/huge/model.safetensors" <<'PY'
import json, os, struct, sys
n = 1 << 40
header = json.dumps({"huge": {"dtype": "U8", "shape": [n], "data_offsets": [0, n]}}).encode()
header += b" " * (-len(header) % 8)
with open(sys.argv[1], "wb") as f:
    f.write(struct.pack("<Q", len(header)) + header)
    f.truncate(8 + len(header) + n)
PY
m=$(manifest "$tag-huge" "$TEST_TMP/huge" "stage: {chunk_size: 4KiB}" "report: ''" "handoff: {mode: none}")
expect_exit 74 "1 TiB declared, host: refused on the arena's room" sh -c "ulimit -v 2097152 && exec $TENSORINIT load -f $m"
check "names the size" grep -q "^tensorinit: error: .*needs 1.00 TiB" "$TEST_TMP/stderr"
check "one error line" test "$(grep -c "error:" "$TEST_TMP/stderr")" = 1
check "1 TiB: nothing left in /dev/shm" no_leftovers "$tag-huge"
m=$(manifest "$tag-huge-pc" "$TEST_TMP/huge" "stage: {chunk_size: 4KiB, target: pagecache}" "report: ''" "handoff: {mode: none}")
expect_exit 74 "1 TiB declared, pagecache: refused on the machine's memory" sh -c "ulimit -v 2097152 && exec $TENSORINIT load -f $m"
check "names the size" grep -q "1.00 TiB of tensors but this machine has" "$TEST_TMP/stderr"

# 5. A symlink loop named *.safetensors in a volume: that candidate is unusable, the next is used.
mkdir -p "$TEST_TMP/loopy"
ln -s loop.safetensors "$TEST_TMP/loopy/loop.safetensors"
cat >"$TEST_TMP/loop.yaml" <<EOF
version: 1
model:
  name: $tag-loop
  sources:
    - {type: volume, path: "$TEST_TMP/loopy"}
    - {type: image, path: "$TEST_TMP/v1"}
stage: {target: pagecache}
report: $TEST_TMP/loop-report.json
handoff: {mode: none}
EOF
expect_exit 0 "a symlink loop candidate, then a good one: loaded" "$TENSORINIT" load -f "$TEST_TMP/loop.yaml"
check "the report names the good source and why the volume was unusable" python3 - "$TEST_TMP/loop-report.json" "$TEST_TMP" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["ok"] and r["decision"]["chosen"]["path"] == sys.argv[2] + "/v1", r["decision"]
bad = r["decision"]["candidates"][0]
assert not bad["usable"] and "loop.safetensors" in bad["reason"] and "symbolic links" in bad["reason"], bad
PY
rm -f "$TEST_TMP/loopy/loop.safetensors"
ln -s loop.safetensors "$TEST_TMP/loopy/loop.safetensors"
sed -i '/type: image/d' "$TEST_TMP/loop.yaml"
expect_exit 66 "only the symlink loop: no usable source" "$TENSORINIT" load -f "$TEST_TMP/loop.yaml"
check "one error line naming the loop" grep -q "^tensorinit: error: no usable weight source.*loop.safetensors" "$TEST_TMP/stderr"
check "the report is written on failure" python3 -c "import json; r = json.load(open('$TEST_TMP/loop-report.json')); assert not r['ok']"

finish
