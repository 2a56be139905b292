# Every command on odd arguments: a clean exit code with one `tensorinit: error:` line (escaped, so
# one line even for a path with a newline), never a crash; synth and pack never leave a partial
# output, and never replace a file.
source "$(dirname "$0")/lib.sh"
cd "$TEST_TMP"
nl=$'a\nb'
# clean CODES "description" args...: exit is one of CODES (comma-separated), stderr has exactly one
# error line and no line that is not tensorinit's.
clean() {
  local codes=$1 what=$2; shift 2
  local got=0
  "$TENSORINIT" "$@" >"$TEST_TMP/stdout" 2>"$TEST_TMP/stderr" || got=$?
  local lines errors
  lines=$(wc -l <"$TEST_TMP/stderr"); errors=$(grep -c '^tensorinit: error: ' "$TEST_TMP/stderr" || true)
  if [[ ",$codes," == *",$got,"* ]] && [ "$errors" = 1 ] && [ "$lines" = 1 ]; then ok "$what (exit $got)"; else
    not_ok "$what: exit $got (wanted $codes), $errors error line(s) in $lines"; sed 's/^/    /' "$TEST_TMP/stderr" | head -5; fi
}
clean 64 "plan with no -f" plan
clean 78 "plan -f ''" plan -f ""
clean 78 "plan -f -" plan -f -
clean 78 "plan -f a directory" plan -f /
clean 78 "plan -f a path with a newline" plan -f "$nl"
clean 64 "plan with an unknown option holding a newline" plan "--x$nl"
clean 64 "plan --pull-rate 0" plan --advise --pull-rate 0 -f x
clean 64 "plan -f without a value" plan -f
clean 66 "inspect ''" inspect ""
clean 66 "inspect -" inspect -
clean 66 "inspect a path with a newline" inspect "$nl"
clean 64 "inspect two paths" inspect a b
clean 66 "inspect -- -odd (a positional after --)" inspect -- -odd
clean 64 "synth --size 99999TiB" synth --size 99999TiB "$TEST_TMP/huge"
check "synth --size 99999TiB wrote nothing" not test -e "$TEST_TMP/huge"
clean 64 "synth --size 0" synth --size 0 out
clean 64 "synth --size -1" synth --size -1 out
clean 64 "synth --size ''" synth --size "" out
clean 64 "synth --shards 0" synth --size 1MiB --shards 0 out
clean 64 "synth --shards 99999999999999999999" synth --size 1MiB --shards 99999999999999999999 out
clean 64 "synth --seed -1" synth --size 1MiB --seed -1 out
clean 64 "synth --dtype ''" synth --size 1MiB --dtype "" out
clean 64 "synth OUTDIR ''" synth --size 1MiB ""
clean 64 "synth OUTDIR -" synth --size 1MiB -
clean 64 "synth with more shards than tensors" synth --size 1KiB --shards 500 "$TEST_TMP/few"
check "nothing written for the refused synths" not test -e "$TEST_TMP/out" -o -e "$TEST_TMP/few" -o -e "$TEST_TMP/-"

# synth never replaces a file, and a second synth into the same directory is refused whole.
mkdir -p "$TEST_TMP/theirs" && echo precious >"$TEST_TMP/theirs/model.safetensors"
clean 64 "synth refuses to replace a file it did not write" synth --size 1MiB "$TEST_TMP/theirs"
check "their file is untouched" grep -qx precious "$TEST_TMP/theirs/model.safetensors"
expect_exit 0 "synth into a path with a newline" "$TENSORINIT" synth --size 1MiB --shards 2 "$TEST_TMP/$nl"
check "only the model's files, no temporaries" test "$(ls "$TEST_TMP/$nl" | tr '\n' ' ')" = \
  "model-00001-of-00002.safetensors model-00002-of-00002.safetensors model.safetensors.index.json "
clean 64 "synth again into the same directory" synth --size 1MiB --shards 2 "$TEST_TMP/$nl"

# pack: never over an existing file (IN itself included); odd paths are clean errors.
in="$TEST_TMP/$nl/model-00001-of-00002.safetensors"
cp "$in" "$TEST_TMP/in.orig"
clean 64 "pack IN IN" pack "$in" "$in"
check "IN is untouched" cmp -s "$in" "$TEST_TMP/in.orig"
echo mine >"$TEST_TMP/exists.zst"
clean 64 "pack over an existing file" pack "$in" "$TEST_TMP/exists.zst"
check "the existing file is untouched" grep -qx mine "$TEST_TMP/exists.zst"
clean 64 "pack IN ''" pack "$in" ""
clean 64 "pack IN -" pack "$in" -
clean 64 "pack '' OUT" pack "" "$TEST_TMP/x.zst"
clean 64 "pack --frame-size 99999TiB" pack --frame-size 99999TiB "$in" "$TEST_TMP/x.zst"
clean 64 "pack --frame-size 0 (divided by zero)" pack --frame-size 0 "$in" "$TEST_TMP/x.zst"
clean 64 "pack --frame-size 4194304TiB (4 x 2^62 wrapped to 0)" pack --frame-size 4194304TiB "$in" "$TEST_TMP/x.zst"
clean 64 "pack --level -99999999999" pack --level -99999999999 "$in" "$TEST_TMP/x.zst"
clean 66,74 "pack a missing IN" pack "$TEST_TMP/missing" "$TEST_TMP/x.zst"
check "no partial pack output" not test -e "$TEST_TMP/x.zst"
expect_exit 0 "pack into a new file" "$TENSORINIT" pack "$in" "$TEST_TMP/new.zst"

# run: options end at "--": a --help after it belongs to the server.
expect_exit 0 "run -- sh -c ... --help runs the command, not tensorinit's help" "$TENSORINIT" run -- sh -c 'echo "server got $1"' sh --help
check "the server got --help" grep -qx "server got --help" "$TEST_TMP/stdout"
clean 64 "an unknown command with a newline" "bogus$nl"
finish
