# A container's process limit (a pids cgroup's pids.max, ulimit -u) refuses new threads: each
# pthread_create of a load, from the K-th on (once, or every one after), fails with EAGAIN through
# an LD_PRELOAD shim (tests/tools/thread_faults.c), exact, not timing. Each outcome must be exit 0
# with the table byte-exact (count16's table thread refused: the text is built after the
# staging), or 70 (exec and signal modes) with one error line that names the limit (before: "internal error: Resource
# temporarily unavailable", on main at 8fc0f3d) and nothing left in the arena directory.
# Then the staging buffers refused (aligned_alloc fails): 70, "out of memory" (below).
source "$(dirname "$0")/lib.sh"
tag=a6threads-$$
shim=$TEST_TMP/thread_faults.so
cc -shared -fPIC -o "$shim" "$TESTS_DIR/tools/thread_faults.c" -ldl
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
export TENSORINIT_SHM_DIR=$TEST_TMP/shm
mkdir -p "$TENSORINIT_SHM_DIR"

"$TENSORINIT" synth --size 1MiB --tensors 2000 "$TEST_TMP/model" 2>/dev/null
refused=0
for mode in exec signal; do
m=$(manifest "$tag-$mode" "$TEST_TMP/model" "stage: {readers: 2}" \
  "handoff: {mode: $mode, command: [env, -u, LD_PRELOAD, python3, $TESTS_DIR/tools/verify_table.py]}")
for k in 1 2 3 4 5 6; do
  for count in 1 1000; do
    rm -rf "${TENSORINIT_SHM_DIR:?}"/* "${TENSORINIT_SHM_DIR:?}"/.[!.]*
    got=0
    env LD_PRELOAD="$shim" PT_FAIL_FROM=$k PT_FAIL_COUNT=$count "$TENSORINIT" run -f "$m" \
      >"$TEST_TMP/stdout" 2>"$TEST_TMP/stderr" || got=$?
    what="$mode: threads refused from the ${k}th ($count)"
    if [ "$got" = 0 ]; then
      check "$what: exit 0, byte-exact" grep -q "byte-exact" "$TEST_TMP/stdout"
    else
      refused=$((refused + 1))
      check "$what: exit 70, not $got" test "$got" = 70
      check "$what: one error line" test "$(grep -c 'tensorinit: error:' "$TEST_TMP/stderr")" = 1
      check "$what: the error names the process limit" grep -q "error: .*process limit" "$TEST_TMP/stderr"
      check "$what: nothing left of the model" test -z "$(ls -A "$TENSORINIT_SHM_DIR" | grep -v '^\.tensorinit-.*\.lock$')"
    fi
  done
done
done
# The staging buffers refused (aligned_alloc NULL from 1 MiB on, as under a memory limit), O_DIRECT
# reads that need them: 70, one "out of memory" line, nothing left (before: the readers read into
# address 0, 74 "Bad address"; `ulimit -v 300000` with 500,000 tensors did the same).
for mode in exec signal; do
  manifest "$tag-$mode-d" "$TEST_TMP/model" "stage: {readers: 2, direct_io: on}" \
    "handoff: {mode: $mode, command: [env, -u, LD_PRELOAD, python3, $TESTS_DIR/tools/verify_table.py]}" >/dev/null
  rm -rf "${TENSORINIT_SHM_DIR:?}"/* "${TENSORINIT_SHM_DIR:?}"/.[!.]*
  expect_exit 70 "$mode: staging buffers refused" \
    env LD_PRELOAD="$shim" AA_FAIL_OVER=1048576 "$TENSORINIT" run -f "$TEST_TMP/$tag-$mode-d.yaml"
  check "$mode: staging buffers refused: one line, out of memory" \
    test "$(grep -c '^tensorinit: error: out of memory' "$TEST_TMP/stderr")" = 1
  check "$mode: staging buffers refused: nothing left" test -z "$(ls -A "$TENSORINIT_SHM_DIR" | grep -v '^\.tensorinit-.*\.lock$')"
done
check "some loads were refused a thread they could not do without ($refused)" test "$refused" -gt 0
finish
