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
for row in "pinned cudaMemcpy H2D" "page cache -> HBM" "disk -> HBM" "discard pipeline" "safetensors load_file" \
  "Run:ai" "fastsafetensors" "instanttensor"; do
  check "the table has the row: $row" grep -q "^| .*$row" "$out"
done
check "tensorinit rows hold numbers" grep -Eq '^\| tensorinit load, page cache -> HBM.*\| [0-9]+\.[0-9]+ ' "$out"
[ "$failed" = 0 ] || sed 's/^/    /' "$out" | tail -20
finish
