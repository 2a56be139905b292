# Signal mode when /proc is not this PID namespace's (`unshare -p -f` without --mount-proc, a
# sandbox that binds the host's /proc): the ready signal must still wait for the server's handler.
# Before the fix tensorinit took "not ours" as "ready" and sent SIGUSR1 at once: a server that had
# not installed its handler yet died of it (exit 138).
source "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || { echo "needs root (unshare -p)"; exit 1; }
model=$TEST_TMP/model
"$TENSORINIT" synth --size 1MiB --seed 7 "$model" 2>/dev/null

# late_handler: waits for the socket's answer (the signal is due), installs its handler 1.5 s later.
printf '%s\n' "import runpy, sys" "sys.argv = ['late_handler.py', 'SIGUSR1', '1.5']" \
  "runpy.run_path('$TESTS_DIR/tools/late_handler.py', run_name='__main__')" >"$TEST_TMP/late_handler.py"
# One that never asks for the signal: it must not be killed by it either.
cat >"$TEST_TMP/no_handler.py" <<'PY'
import os, socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(os.environ["TENSORINIT_SOCKET"])
while s.recv(65536):
    pass
time.sleep(1.5)
PY

for start in early; do
  m=$(manifest foreign-$start "$model" "report: ''" "handoff: {mode: signal, start: $start}")
  for server in late_handler no_handler; do
    expect_exit 0 "PID 1 of a new PID namespace on the host's /proc, $server" \
      unshare --pid --fork -- "$TENSORINIT" run -f "$m" -- python3 "$TEST_TMP/$server.py"
    expect_exit 0 "not PID 1 (subreaper) on the host's /proc, $server" \
      unshare --pid --fork -- sh -c '"$@"; exit $?' sh "$TENSORINIT" run -f "$m" -- python3 "$TEST_TMP/$server.py"
    check "nothing left in /dev/shm ($server)" no_leftovers foreign-$start
  done
done

# The drain (not PID 1: the descendants found under /proc) on the host's /proc. Before the fix it
# signalled nobody: tensorinit waited for the server's orphan (here 600 s) and SIGKILL after the
# grace reached nobody either. unshare ignores TERM while it waits: KILL, and --kill-child ends
# the namespace, if this bound is reached.
expect_exit 0 "not PID 1 on the host's /proc: the server's orphan is drained" \
  timeout -s KILL 60 unshare --pid --fork --kill-child -- sh -c '"$@"; exit $?' sh \
  "$TENSORINIT" run --grace 30s -- sh -c 'sleep 600 & exit 0'

# A `ready` on the socket from the server's child (handoff.ready: socket): accepted only from the
# server's descendants, which the check looked up in /proc by our pid numbers. The server waits
# for the report's seconds.ready (written at ready), then exits.
cat >"$TEST_TMP/ready_child.py" <<'PY'
import json, os, socket, subprocess, sys, time
if sys.argv[1:] == ["child"]:
    s = socket.socket(socket.AF_UNIX)
    s.connect(os.environ["TENSORINIT_SOCKET"])
    s.sendall(b"ready\n")
    while s.recv(65536):
        pass
    sys.exit(0)
subprocess.run([sys.executable, __file__, "child"], check=True)
end = time.time() + 30
while time.time() < end:
    try:
        if "ready" in json.load(open(sys.argv[1])).get("seconds", {}):
            sys.exit(0)
    except (OSError, ValueError):
        pass
    time.sleep(0.05)
sys.exit(3)
PY
for start in early after-load; do
  m=$(manifest ready-$start "$model" "report: $TEST_TMP/ready-$start.json" \
    "handoff: {mode: signal, start: $start, signal: SIGCONT, ready: {socket: true, timeout: 2m}}")
  expect_exit 0 "not PID 1 on the host's /proc: 'ready' from the server's child counts ($start)" \
    unshare --pid --fork -- sh -c '"$@"; exit $?' sh "$TENSORINIT" run -f "$m" -- \
    python3 "$TEST_TMP/ready_child.py" "$TEST_TMP/ready-$start.json"
  check "no 'ignored' warning ($start)" not grep -q "not the server" "$TEST_TMP/stderr"
done
finish
