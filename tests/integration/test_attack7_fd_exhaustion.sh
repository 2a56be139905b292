# The readiness socket's clients take tensorinit's last descriptors (a low `ulimit -n`; anyone who
# can reach the socket can connect, up to 64 at once). Before the fix the ready signal's check
# could not open /proc/PID/status (EMFILE), took that as "ready" and sent SIGUSR1 to a server
# that had no handler: killed (138). Now an unreadable /proc is "not yet". And the listener, out
# of descriptors, accepted again at once in a loop (a core spun: 99 ticks a second, exit 6 here).
source "$(dirname "$0")/lib.sh"
model=$TEST_TMP/model
"$TENSORINIT" synth --size 1MiB --seed 13 "$model" 2>/dev/null

# The server: waits for the weights, then connects 80 clients (more than tensorinit may hold),
# waits until tensorinit's descriptors reach its limit, holds them there for a second of polls,
# lets them go, then installs its handler and waits for the signal.
cat >"$TEST_TMP/exhaust.py" <<'PY'
import os, resource, signal, socket, sys, threading, time
hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # ours back; tensorinit keeps its low one
path = os.environ["TENSORINIT_SOCKET"]
s = socket.socket(socket.AF_UNIX)
s.connect(path)
while s.recv(65536):
    pass
init = os.getppid()
limit = next(int(l.split()[3]) for l in open(f"/proc/{init}/limits") if l.startswith("Max open files"))
clients = []
for _ in range(80):
    c = socket.socket(socket.AF_UNIX)
    c.connect(path)
    clients.append(c)
end = time.time() + 60
while len(os.listdir(f"/proc/{init}/fd")) < limit and time.time() < end:
    time.sleep(0.01)
if time.time() >= end:
    sys.exit(5)
def ticks():
    f = open(f"/proc/{init}/stat").read().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])
before = ticks()
time.sleep(1)
spent = ticks() - before
print(f"tensorinit's CPU at its descriptor limit: {spent} ticks in 1 s", flush=True)
if spent > 30:  # accepting again at once after EMFILE spun a core: 99 ticks (100 a second)
    sys.exit(6)
for c in clients:
    c.close()
got = threading.Event()
signal.signal(signal.SIGUSR1, lambda *_: got.set())
sys.exit(0 if got.wait(60) else 3)
PY
m=$(manifest fd-exhaust "$model" "report: ''" "handoff: {mode: signal, start: early}")
expect_exit 0 "socket clients take tensorinit's last descriptors: the server is not signalled on a guess" \
  bash -c 'ulimit -Sn 40 && exec "$@"' sh "$TENSORINIT" run -f "$m" -- python3 "$TEST_TMP/exhaust.py"
cat "$TEST_TMP/stdout"
check "nothing left in /dev/shm" no_leftovers fd-exhaust
finish
