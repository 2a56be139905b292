"""Attacks on handoff.restart and handoff.ready (docs/notes/attacker2.md): a crashing server that
truncates the staged arena before it exits (the digest check before the restart must refuse it
with exit 65, not die of SIGBUS mapping the missing pages, and leave nothing in /dev/shm); a health
endpoint that streams a status line that never ends (the probe must not buffer it without bound).
Waits are on files and processes (supervision_lib.wait_for)."""

import os
import socket
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from supervision_lib import (TEST_TMP, check, check_restart_refused, finish, fresh_tmp, free_port,  # noqa: E402
                             no_leftovers, server_script, start, stderr_of, stop, synth, wait_for, write_manifest)

fresh_tmp()
model = synth("4MiB")

# 1. The server truncates the arena (root ignores mode 0444), then crashes.
script = server_script("truncate", """
w = tc.wait_and_open()
path = w.table["arenas"][0]["path"]
fd = os.open(path, os.O_RDWR)
os.ftruncate(fd, 4096)
os.close(fd)
LOG(event="truncated")
sys.exit(1)
""")
check_restart_refused("truncate", "attack-truncate", model, script, "arena", why_65=" (not killed by SIGBUS)")
for n in os.listdir("/dev/shm"):  # a crashed tensorinit leaves its arena: do not leak it to later tests
    if "tensorinit-attack-truncate" in n:
        os.unlink(os.path.join("/dev/shm", n))

# 2. A health endpoint that streams a status line without a newline: 64 MiB, then closes. The
# probe must give up on a too long line, not hold it all in memory (tensorinit is often PID 1).
STREAM = 64 << 20
port = free_port()
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", port))
listener.listen(8)
served = threading.Event()


def serve():
    conn, _ = listener.accept()
    conn.recv(4096)
    chunk = b"H" * (1 << 20)
    try:
        for _ in range(STREAM // len(chunk)):
            conn.sendall(chunk)
    except OSError:
        pass  # the probe hung up early: what the fix does
    conn.close()
    served.set()


threading.Thread(target=serve, daemon=True).start()
script = server_script("idle", "w = tc.wait_and_open()\nLOG(event='up')\ntime.sleep(3600)\n")
m = write_manifest("attack-longline", model, ["mode: signal", "ready: {http: http://127.0.0.1:%d/health, timeout: 10m}"
                                              % port])
proc = start(m, ["python3", script])
got = wait_for("the stream served", served.is_set, proc)


def hwm_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        return [int(l.split()[1]) for l in f if l.startswith("VmHWM")][0]


hwm = hwm_kib(proc.pid) if proc.poll() is None else -1
check("longline: the stream was served while tensorinit ran", got and hwm > 0, (got, hwm, stderr_of(m)))
check("longline: tensorinit's peak memory stays under 48 MiB (%d KiB)" % hwm, 0 < hwm < 48 << 10, hwm)
check("longline: not ready on it", not os.path.exists(os.path.join(TEST_TMP, "ready")))
code = stop(proc)
check("longline: SIGTERM ends it (143)", code == 143, (code, stderr_of(m)))
check("longline: nothing left", no_leftovers("attack-longline"))
listener.close()
finish()
