# Shared helpers for the integration tests (sourced).
set -euo pipefail
: "${TENSORINIT:?run through ctest}" "${FIXTURES:?}" "${TEST_TMP:?}" "${TESTS_DIR:?}"
rm -rf "$TEST_TMP" && mkdir -p "$TEST_TMP"
VERIFY="python3 $TESTS_DIR/tools/verify_table.py"
passed=0
failed=0

ok() { passed=$((passed + 1)); echo "ok - $*"; }
not_ok() { failed=$((failed + 1)); echo "not ok - $*"; }

# check "description" command...: passes when the command exits 0.
check() {
  local what=$1; shift
  if "$@"; then ok "$what"; else not_ok "$what"; fi
}

# expect_exit CODE "description" command...: runs it, keeps stderr in $TEST_TMP/stderr.
expect_exit() {
  local want=$1 what=$2; shift 2
  local got=0
  "$@" >"$TEST_TMP/stdout" 2>"$TEST_TMP/stderr" || got=$?
  if [ "$got" = "$want" ]; then ok "$what (exit $got)"; else
    not_ok "$what: exit $got, wanted $want"; sed 's/^/    /' "$TEST_TMP/stderr" | tail -5; fi
}

not() { ! "$@"; }

# start_fault_server DIR [ARG...]: tests/tools/fault_server.py serving DIR on loopback with its
# control on stdin: sets `fault_ctl` (write commands to it; close it to stop the server) and
# `fault_port` (its HTTP port), once the server has written both of its ports.
start_fault_server() {
  local dir=$1
  shift
  : >"$TEST_TMP/fault.ports"
  exec {fault_ctl}> >(exec python3 "$TESTS_DIR/tools/fault_server.py" "$dir" --stdin-control "$@" \
    >"$TEST_TMP/fault.ports")
  for _ in $(seq 1 1200); do [ "$(wc -l <"$TEST_TMP/fault.ports")" -ge 2 ] && break; sleep 0.1; done
  fault_port=$(head -1 "$TEST_TMP/fault.ports")
}

no_leftovers() {  # no_leftovers MODEL: nothing of MODEL in /dev/shm
  ! ls -a /dev/shm | grep -q -- "tensorinit-$1"
}

# manifest NAME SOURCE_PATH [extra YAML lines...]: writes $TEST_TMP/NAME.yaml
manifest() {
  local name=$1 path=$2; shift 2
  {
    echo "version: 1"
    echo "model:"
    echo "  name: $name"
    echo "  sources:"
    echo "    - {type: image, path: \"$path\"}"
    for line in "$@"; do echo "$line"; done
  } >"$TEST_TMP/$name.yaml"
  echo "$TEST_TMP/$name.yaml"
}

# A python that has the real tensorizer and torch (TENSORIZER_PYTHON, python3, the bench venv), or
# nothing: tests that need it say "skip" then.
tensorizer_python() {
  local candidate
  for candidate in ${TENSORIZER_PYTHON:-} python3 /var/tmp/tensorinit-bench/venv/bin/python; do
    if command -v "$candidate" >/dev/null && "$candidate" -c "import tensorizer, torch" 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
}

finish() {
  echo "$passed passed, $failed failed"
  [ "$failed" = 0 ]
}
