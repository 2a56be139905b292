# The ready signal sent before the server asked for it is lost when the server ignores it: an
# ignored SIGUSR1 inherited from tensorinit's parent (passed on to the server, tini's rule), or a
# ready signal whose default action is to do nothing (SIGWINCH, SIGCONT). Before the fix both were
# sent the moment staging ended; a server that installed its handler after that (a slow import)
# waited for it forever. Now tensorinit waits until the server catches it (or waits for it).
source "$(dirname "$0")/lib.sh"
model=$TEST_TMP/model
"$TENSORINIT" synth --size 1MiB --seed 11 "$model" 2>/dev/null

late="$TESTS_DIR/tools/late_handler.py"  # SIGNAL: the server's handler comes 0.5 s after the socket's answer
# The parent of tensorinit ignores SIGNAL, then execs the rest.
cat >"$TEST_TMP/ignoring.py" <<'PY'
import os, signal, sys
signal.signal(getattr(signal, sys.argv[1]), signal.SIG_IGN)
os.execvp(sys.argv[2], sys.argv[2:])
PY
for start in early; do
  m=$(manifest ign-usr1 "$model" "report: ''" "handoff: {mode: signal, start: $start}")
  expect_exit 0 "SIGUSR1 ignored by tensorinit's parent, the server's handler comes late" \
    python3 "$TEST_TMP/ignoring.py" SIGUSR1 "$TENSORINIT" run -f "$m" -- python3 "$late" SIGUSR1
  for sig in SIGWINCH SIGCONT; do
    m=$(manifest ign-${sig,,} "$model" "report: ''" "handoff: {mode: signal, start: $start, signal: $sig}")
    expect_exit 0 "handoff.signal $sig (default: nothing), the server's handler comes late" \
      "$TENSORINIT" run -f "$m" -- python3 "$late" $sig
  done
done
# A shutdown thread in sigwait for SIGTERM (SIGTERM blocked, SIGUSR1 not yet caught): the wait
# channel said "waits for a signal", so SIGUSR1 was sent at once and killed the server (138).
cat >"$TEST_TMP/sigwait_term.py" <<'PY'
import os, signal, socket, sys, threading, time
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
threading.Thread(target=lambda: signal.sigwait({signal.SIGTERM}), daemon=True).start()
s = socket.socket(socket.AF_UNIX)
s.connect(os.environ["TENSORINIT_SOCKET"])
while s.recv(65536):
    pass
time.sleep(0.5)
got = threading.Event()
signal.signal(signal.SIGUSR1, lambda *_: got.set())
sys.exit(0 if got.wait(60) else 3)
PY
m=$(manifest ign-sigwait "$model" "report: ''" "handoff: {mode: signal, start: early}")
expect_exit 0 "a thread in sigwait for SIGTERM, the SIGUSR1 handler comes late" \
  "$TENSORINIT" run -f "$m" -- python3 "$TEST_TMP/sigwait_term.py"

# A server that ignores the signal for good (or never asks) is not waited for: it ends, so does
# tensorinit, with its code.
m=$(manifest ign-never "$model" "report: ''" "handoff: {mode: signal, start: early}")
cat >"$TEST_TMP/never.py" <<'PY'
import os, socket
s = socket.socket(socket.AF_UNIX)
s.connect(os.environ["TENSORINIT_SOCKET"])
while s.recv(65536):
    pass
PY
expect_exit 0 "a server that ignores SIGUSR1 for good ends as it likes" \
  python3 "$TEST_TMP/ignoring.py" SIGUSR1 "$TENSORINIT" run -f "$m" -- python3 "$TEST_TMP/never.py"
check "nothing left in /dev/shm" not grep -q tensorinit-ign- <(ls -a /dev/shm)
finish
