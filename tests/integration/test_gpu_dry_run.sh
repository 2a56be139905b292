# tests/gpu/run.sh, the one prepared GPU call, as far as a machine without a GPU can take it
# (--dry-run: the strict CUDA double stands in, byte-exactness on its dump of device memory): the
# script's own logic is checked here, so a GPU's scarce minutes are not spent finding its bugs.
source "$(dirname "$0")/lib.sh"
: "${TENSORINIT_CUDADOUBLE:?run through ctest}"
out=$TEST_TMP/out
code=0
GPU_TEST_SIZE=16MiB GPU_TEST_TMP=$TEST_TMP/gpu TENSORINIT_CUDADOUBLE=$TENSORINIT_CUDADOUBLE \
  timeout 300 bash "$TESTS_DIR/gpu/run.sh" --dry-run "$(dirname "$TENSORINIT")" >"$out" 2>&1 || code=$?
check "run.sh --dry-run exits 0" test "$code" = 0
check "byte-exact on the double" grep -q "^ok - dry: every tensor byte-exact" "$out"
check "no device: exit 69" grep -q "^ok - no device: exit 69" "$out"
check "no check failed" not grep -q "^not ok" "$out"
for row in "CUDA IPC: server opened a non-dumpable tensorinit's handles" "pinned cudaMemcpy H2D" "page cache -> HBM" \
  "disk -> HBM" "discard pipeline" "safetensors load_file" "Run:ai" "fastsafetensors" "instanttensor"; do
  check "the table has the row: $row" grep -q "^| .*$row" "$out"
done
check "tensorinit rows hold numbers" grep -Eq '^\| tensorinit load, page cache -> HBM.*\| [0-9]+\.[0-9]+ ' "$out"
# The forced settings (stage.shared_cursor) ran, and each says what carried its load.
check "whole chunks forced: whole chunks carried it" grep -Eq '^\|   forced: whole 16 MiB chunks .*\| [0-9]+\.[0-9]+ .*x[0-9]+ chunks \([0-9]+ cand' "$out"
check "cursor forced, 1 MiB parts: the cursor carried it" grep -Eq '^\|   forced: shared cursor, 1 MiB parts .*\| [0-9]+\.[0-9]+ .*buffered 1M x[0-9]+ cursor \(1 cand' "$out"
check "cursor forced, 16 MiB parts" grep -Eq '^\|   forced: shared cursor, 16 MiB parts .*\| [0-9]+\.[0-9]+ .*buffered 16M x[0-9]+ cursor \(1 cand' "$out"
check "every row fits the 450 s budget" grep -q "^gpu: finished in [0-9]*s (budget 450s)" "$out"
# The consumer (built where the CUDA toolkit is) runs its exporter check under the double: no
# ptrace access to a non-dumpable tensorinit, allowed to a dumpable child of its own.
if [ -x "$(dirname "$TENSORINIT")/tensorinit_cuda_consumer" ]; then
  check "the exporter check found tensorinit not ptrace-accessible" grep -q "^ok - dry: the consumer has no ptrace access to a non-dumpable tensorinit" "$out"
fi
[ "$failed" = 0 ] || sed 's/^/    /' "$out" | tail -20
finish
