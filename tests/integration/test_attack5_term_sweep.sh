# SIGTERM at every phase of a start, fixed by ptrace (tests/tools/early_term.c), not by timing:
# tensorinit runs as PID 1 of a fresh PID namespace and gets SIGTERM right after its main thread's
# K-th system call, for every K from its first thread's creation (test_first_stage.sh sweeps the
# ones before) until the server has run. Plan, staging, digest, publish, table, spawn or exec, the
# ready signal: each outcome must be 143 with nothing of the model left in /dev/shm, or the
# server's own exit after it checked every tensor byte for byte (the signal came after it ended).
# Found: in signal mode, a TERM taken by the stop watcher while the plan's watch ended
# (StopOnSignal read, then destroyed) was lost: exit 0 and the server run (main at 496d6a7: K at
# the watcher's wake, 2 or 3 of 3 tries each at two consecutive K).
source "$(dirname "$0")/lib.sh"
if [ "$(id -u)" != 0 ] || ! command -v cc >/dev/null; then
  echo "# skipped: needs root (a PID namespace) and cc"
  finish
fi
T=$TEST_TMP
cc -O2 -o "$T/early_term" "$TESTS_DIR/tools/early_term.c"
"$TENSORINIT" synth --size 1MiB --tensors 300 "$T/model" 2>/dev/null
# The server: waits for the ready signal (wait) or not, checks every tensor, prints when it ended.
cat >"$T/server.py" <<EOF
import signal, subprocess, sys, time
if sys.argv[1] == "wait":
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    signal.sigwait({signal.SIGUSR1})
r = subprocess.run([sys.executable, "$TESTS_DIR/tools/verify_table.py"])
print("ended at", time.monotonic_ns(), flush=True)
sys.exit(r.returncode)
EOF

# sweep WHAT YAML-LINES...: the sweep above for a manifest with those lines. Exit 0 is right only
# when the server ran to its end before the signal was sent, or (exec mode) when the signal came
# after the server's exec (PID 1 without a handler ignores it).
sweep() {
  local what=$1 name=attack5-sweep-$$; shift
  local m code n k bad=0 first="" served=0 execs0 execs sent ended
  m=$(manifest "$name" "$T/model" "report: ''" "$@")
  code=0; WATCHDOG=60 "$T/early_term" spawn "$TENSORINIT" run -f "$m" 2>"$T/spawn.err" >/dev/null || code=$?
  n=$(sed -n 's/^syscall \([0-9]*\): .*/\1/p' "$T/spawn.err")
  execs0=$(sed -n 's/^syscall .* execs \([0-9]*\) .*/\1/p' "$T/spawn.err")
  if [ "$code" != 143 ] || [ -z "$n" ]; then not_ok "[$what] SIGTERM at the first thread: exit $code"; return; fi
  for ((k = n; k < n + 3000; k++)); do
    code=0; WATCHDOG=60 "$T/early_term" "$k" "$TENSORINIT" run -f "$m" 2>"$T/k.err" >"$T/k.out" || code=$?
    # 253: it ended before its K-th system call, no signal sent
    if [ "$code" = 253 ] && grep -q "^verified 300 tensors" "$T/k.out"; then served=1; break; fi
    if [ "$code" = 0 ] && grep -q "^verified 300 tensors" "$T/k.out"; then
      execs=$(sed -n 's/^syscall .* execs \([0-9]*\) .*/\1/p' "$T/k.err")
      sent=$(sed -n 's/^syscall .* at \([0-9]*\)$/\1/p' "$T/k.err")
      ended=$(sed -n 's/^ended at \([0-9]*\)$/\1/p' "$T/k.out")
      if [ "$execs" -gt "$execs0" ] || { [ -n "$ended" ] && [ "$ended" -lt "$sent" ]; }; then served=1; break; fi
      code="0 (the server ran after the signal was sent: lost)"
    elif [ "$code" = 143 ] && no_leftovers "$name"; then
      continue
    fi
    bad=$((bad + 1))
    first=${first:-"after system call $k ($(sed -n 's/^syscall [0-9]*: //p' "$T/k.err")): exit $code, $(ls /dev/shm | grep -c "$name" || true) left in /dev/shm"}
    [ "$bad" -ge 3 ] && break
    rm -f /dev/shm/*"$name"*
  done
  if [ "$bad" = 0 ] && [ "$served" = 1 ]; then ok "[$what] SIGTERM after each of system calls $n-$((k - 1)): 143, nothing left"
  else not_ok "[$what] $bad wrong outcomes (first $first); the server ran: $served"; fi
}
sweep "exec" "handoff: {mode: exec, command: [python3, $T/server.py, go]}"
sweep "signal early, restarts" \
  "handoff: {mode: signal, start: early, restart: on-failure, command: [python3, $T/server.py, wait]}"
# after-load: no ready signal (the weights are there when the server starts)
sweep "signal after-load" "handoff: {mode: signal, start: after-load, command: [python3, $T/server.py, go]}"
finish
