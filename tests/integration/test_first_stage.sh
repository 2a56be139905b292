#!/usr/bin/env bash
# bin/tensorinit is a static first stage (src/first_stage) whose first instructions block every
# signal; it runs the plain init itself and execs tensorinit-full beside it for everything else.
# Checks: a SIGTERM sent to PID 1 of a fresh PID namespace right after any one of its system
# calls, from the first (the stub's mask) to the first spawn (for a manifest: the exec of
# tensorinit-full, its loader, static constructors and plan included), stops it with 143 every
# time; the moment is fixed by ptrace (tests/tools/early_term.c), not by timing.
# The server starts with the mask tensorinit was started with (empty, or what the parent
# blocked), never the first stage's, and never sees the handover variable. A missing, not
# executable or self-referring tensorinit-full: exit 70 and one error line naming it. Root for the
# PID namespace part (CI); the rest runs as anyone.
source "$(dirname "$0")/lib.sh"
T=$TEST_TMP
full=$(dirname "$TENSORINIT")/tensorinit-full
check "tensorinit-full sits beside tensorinit" test -x "$full"
check "tensorinit (the first stage) is static: no program interpreter" not grep -q 'program interpreter' <(readelf -l "$TENSORINIT")

# --- early SIGTERM as PID 1, after each system call up to the first spawn ----------------------
# sweep WHAT ARGS...: `early_term spawn` counts the system calls up to the first process or thread
# created (the server's spawn for the plain init, which the first stage runs itself; the first
# staging thread with a manifest, after the exec of tensorinit-full, its loader and its static
# constructors), then SIGTERM after each of them in turn must give 143.
sweep() {
  local what=$1; shift
  local code=0 n lost=0 other=0 first="" k
  WATCHDOG=60 "$T/early_term" spawn "$TENSORINIT" "$@" 2>"$T/spawn.err" >/dev/null || code=$?
  n=$(sed -n 's/^syscall \([0-9]*\): .*/\1/p' "$T/spawn.err")
  if [ "$code" = 143 ] && [ -n "$n" ] && [ "$n" -gt 1 ]; then ok "[$what] SIGTERM right after the first spawn (system call $n): 143"
  else not_ok "[$what] SIGTERM after the first spawn: exit $code, $(cat "$T/spawn.err")"; return; fi
  for ((k = 1; k < n; k++)); do
    code=0; WATCHDOG=30 "$T/early_term" "$k" "$TENSORINIT" "$@" 2>"$T/k.err" >/dev/null || code=$?
    [ "$code" = 143 ] && continue
    if [ "$code" = 255 ]; then lost=$((lost + 1)); else other=$((other + 1)); fi
    first=${first:-"after system call $k ($(sed -n 's/^syscall [0-9]*: //p' "$T/k.err")): exit $code"}
    [ $((lost + other)) -ge 3 ] && break  # a regression: no need to wait out every watchdog
  done
  if [ $((lost + other)) = 0 ]; then ok "[$what] SIGTERM after each of system calls 1-$((n - 1)) as PID 1: 143 every time"
  else not_ok "[$what] early SIGTERM: $lost lost, $other other exit codes; first $first"; fi
}
if [ "$(id -u)" = 0 ] && command -v cc >/dev/null; then
  cc -O2 -o "$T/early_term" "$TESTS_DIR/tools/early_term.c"
  sweep "plain init" run -- sleep 1000
  m=$(manifest "first-stage-$$" "$FIXTURES/tiny-f16.safetensors" "stage:" "  target: host" \
    "handoff:" "  mode: exec" "  command: [sleep, '1000']")
  sweep manifest run -f "$m"
  check "[manifest] nothing left in /dev/shm" no_leftovers "first-stage-$$"
  # The kernel's own window (before the first instruction) is no init's: shown, not required.
  code=0; WATCHDOG=10 "$T/early_term" 0 "$TENSORINIT" run -- sleep 1000 2>/dev/null || code=$?
  echo "# SIGTERM before the first instruction (the kernel's window): exit $code (255: dropped, as for any init)"
else
  echo "# early SIGTERM as PID 1: skipped (needs root and cc)"
fi

# --- the mask and environment the server starts with ---------------------------------------------
sigblk() { sed -n 's/^SigBlk:\t//p' "$1"; }
"$TENSORINIT" run -- sh -c 'cat /proc/$$/status >"$1"; env >"$2"' sh "$T/status" "$T/env" || true
# (sh's own start could clear a mask; grep reports it as exec'd, so the status is read by grep)
"$TENSORINIT" run -- grep -h SigBlk /proc/self/status >"$T/blk" 2>&1 || true
check "the server starts with an empty mask ($(cat "$T/blk"))" grep -qx $'SigBlk:\t0000000000000000' "$T/blk"
check "the server's environment has no TENSORINIT_FIRST_STAGE_MASK" not grep -q FIRST_STAGE "$T/env"
python3 - "$TENSORINIT" "$T/blk" <<'PY'
import os, signal, sys
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1, signal.SIGRTMIN + 1])
out = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.dup2(out, 1)
os.execv(sys.argv[1], [sys.argv[1], "run", "--", "grep", "-h", "SigBlk", "/proc/self/status"])
PY
check "a mask blocked by tensorinit's parent (USR1, RTMIN+1) is the server's ($(cat "$T/blk"))" \
  grep -qx $'SigBlk:\t0000000400000200' "$T/blk"
TENSORINIT_FIRST_STAGE_MASK=ffffffffffffffff "$TENSORINIT" run -- grep -h SigBlk /proc/self/status >"$T/blk" 2>&1 || true
check "a handover entry set by hand changes nothing ($(cat "$T/blk"))" grep -qx $'SigBlk:\t0000000000000000' "$T/blk"
TENSORINIT_FIRST_STAGE_MASK=ffffffffffffffff "$full" run -- sh -c 'env' >"$T/env" 2>&1 || true
check "tensorinit-full run directly drops a handover entry set by hand" not grep -q FIRST_STAGE "$T/env"

# --- finding tensorinit-full ------------------------------------------------------------------------
mkdir -p "$T/link" "$T/alone" "$T/noexec" "$T/loop"
ln -s "$TENSORINIT" "$T/link/ti"
check "through a symlink: found beside the real file" "$T/link/ti" --version
cp "$TENSORINIT" "$T/alone/tensorinit"
expect_exit 70 "tensorinit without tensorinit-full beside it" "$T/alone/tensorinit" run -f /nonexistent.yaml -- true
check "one error line naming the missing file" test "$(cat "$TEST_TMP/stderr")" = \
  "tensorinit: error: cannot run $T/alone/tensorinit-full: No such file or directory (tensorinit execs the full program, tensorinit-full, installed beside it: copy both)"
expect_exit 3 "the plain init is the first stage's own: it runs without tensorinit-full" "$T/alone/tensorinit" run -- sh -c 'exit 3'
cp "$TENSORINIT" "$T/noexec/tensorinit" && cp "$full" "$T/noexec/tensorinit-full" && chmod 644 "$T/noexec/tensorinit-full"
expect_exit 70 "tensorinit-full not executable" "$T/noexec/tensorinit" --version
check "one error line: permission denied" grep -qx "tensorinit: error: cannot run $T/noexec/tensorinit-full: Permission denied .*" "$TEST_TMP/stderr"
cp "$TENSORINIT" "$T/loop/tensorinit" && cp "$TENSORINIT" "$T/loop/tensorinit-full"
expect_exit 70 "tensorinit-full that is the first stage again" "$T/loop/tensorinit" --version
check "one error line: not the full program" grep -qx "tensorinit: error: tensorinit-full is the first stage itself.*" "$TEST_TMP/stderr"
TENSORINIT_FULL=/bin/false PATH="$T/alone:$PATH" expect_exit 70 "no environment variable points it elsewhere" tensorinit --version

# --- the same answers as the full program -------------------------------------------------------
for args in "--version" "bogus" "run" "run --help" "run --grace x -- true" "run --bogus -- true" "run -- no-such-command-xyz"; do
  a=0; b=0
  "$TENSORINIT" $args >"$T/a.out" 2>"$T/a.err" || a=$?
  "$full" $args >"$T/b.out" 2>"$T/b.err" || b=$?
  check "tensorinit $args: exit $a and output as tensorinit-full's" \
    test "$a" = "$b" -a "$(cat "$T/a.out" "$T/a.err")" = "$(cat "$T/b.out" "$T/b.err")"
done
finish
