# tests/podman/run.sh's runtime part in CI: the packaged artifact under podman (runc), as users run
# it. The first run on a machine installs podman/runc/debootstrap and makes debian:12 locally
# (minutes: debootstrap); when that cannot complete here (no root, no Debian mirror, not within
# 450 s) the test says skip. After that, the runtime checks take about 30 s.
source "$(dirname "$0")/lib.sh"
root=$(cd "$TESTS_DIR/.." && pwd)
export TENSORINIT
[ "$(id -u)" = 0 ] || { echo "skip - podman test needs root"; finish; exit; }
code=0
timeout 450 bash "$root/tests/podman/run.sh" setup >"$TEST_TMP/setup.log" 2>&1 || code=$?
if [ "$code" != 0 ]; then
  echo "skip - podman setup did not complete (exit $code): $(grep -v '^#' "$TEST_TMP/setup.log" | tail -1)"
  finish; exit
fi
code=0
timeout 300 bash "$root/tests/podman/run.sh" runtime >"$TEST_TMP/runtime.log" 2>&1 || code=$?
cat "$TEST_TMP/runtime.log"
if [ "$code" = 0 ]; then ok "tests/podman/run.sh runtime"; else not_ok "tests/podman/run.sh runtime: exit $code"; fi
finish
