# Signal mode sends the ready signal only to a server that can take it: one that catches it, or
# one that keeps it blocked (sigwait). A server that starts threads (glibc blocks every signal for
# an instant inside pthread_create) but never asked for the signal must not be killed by it.
source "$(dirname "$0")/lib.sh"
model=$TEST_TMP/model
"$TENSORINIT" synth --size 1MiB --seed 3 "$model" 2>/dev/null

m=$(manifest ready-threads "$model" "report: ''" "handoff: {mode: signal, start: early}")
cat >"$TEST_TMP/threads.py" <<'PY'
import threading, time
end = time.time() + 2
while time.time() < end:
    t = threading.Thread(target=lambda: None)
    t.start()
    t.join()
PY
expect_exit 0 "a thread-starting server that never asked for SIGUSR1 survives" \
  "$TENSORINIT" run -f "$m" -- python3 "$TEST_TMP/threads.py"

m=$(manifest ready-sigwait "$model" "report: ''" "handoff: {mode: signal, start: early}")
cat >"$TEST_TMP/sigwait.py" <<'PY'
import signal, sys
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
got = signal.sigtimedwait({signal.SIGUSR1}, 20)
sys.exit(0 if got and got.si_signo == signal.SIGUSR1 else 3)
PY
expect_exit 0 "a sigwait server gets the ready signal" "$TENSORINIT" run -f "$m" -- python3 "$TEST_TMP/sigwait.py"

m=$(manifest ready-handler "$model" "report: ''" "handoff: {mode: signal, start: early}")
cat >"$TEST_TMP/handler.py" <<'PY'
import signal, sys, threading
ready = threading.Event()
signal.signal(signal.SIGUSR1, lambda *_: ready.set())
sys.exit(0 if ready.wait(20) else 3)
PY
expect_exit 0 "a server with a handler gets the ready signal" "$TENSORINIT" run -f "$m" -- python3 "$TEST_TMP/handler.py"
finish
