"""Attacks by a server started early (signal mode, start: early) on what handoff.restart trusts
(docs/notes/attacker4.md):
1. it writes the arena the moment the arena is published: the restart digest used to be taken after
   publish (and the table write), so a write in that window became the "staged" bytes and the
   restart went on over them; the digest is now taken before the arena has a name.
2. it swaps the tensor table for a FIFO: tensorinit read the table back by path (for the ready
   socket, the digest, the restart check) and PID 1 hung in open() waiting for a writer.
Waits are on inotify events, files and processes (supervision_lib.wait_for)."""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from supervision_lib import (TEST_TMP, check, check_restart_refused, finish, fresh_tmp, log_lines,  # noqa: E402
                             no_leftovers, server_script, start, stderr_of, synth, write_manifest)

fresh_tmp()
model = synth("64MiB")  # a digest long enough that a write right after publish used to beat it
STOPPED = ["sh", "-c", 'kill -STOP "$PPID"; exec python3 "$0"']

# What both servers share: USR1 caught first (tensorinit sends it only once it is caught), then
# the server waits for NAME in the shm dir to be created or renamed into place (inotify).
# STOPPED: the server's shell stops tensorinit (not PID 1 here) until Python watches the shm dir,
# as a real server is up long before a real model is staged (Python alone starts slower here than
# this 64 MiB model stages). The outcome no longer depends on that race: the arena has no name
# until it is digested.
PRELUDE = """
import ctypes
got_usr1 = []
signal.signal(signal.SIGUSR1, lambda *_: got_usr1.append(1))
SHM = os.environ.get("TENSORINIT_SHM_DIR") or "/dev/shm"
libc = ctypes.CDLL(None, use_errno=True)
watch = libc.inotify_init1(0)
libc.inotify_add_watch(watch, SHM.encode(), 0x100 | 0x80)  # IN_CREATE | IN_MOVED_TO
os.kill(os.getppid(), signal.SIGCONT)  # watching now: tensorinit may go on (see STOPPED)
def wait_named(name):
    path = os.path.join(SHM, name)
    while not os.path.exists(path):
        os.read(watch, 65536)
    return path
def wait_usr1():
    while not got_usr1:
        signal.pause()
first = not os.path.exists(os.path.join(TMP, NAME + ".first"))
open(os.path.join(TMP, NAME + ".first"), "a").close()
"""

# 1. The arena written right after it is published (its last page: digested last).
script = server_script("early_write", "NAME = 'attack4-early'\n" + PRELUDE + """
if not first:
    LOG(event="restarted on the written arena")
    sys.exit(0)
arena = wait_named("tensorinit-attack4-early-0")
fd = os.open(arena, os.O_WRONLY)
size = os.fstat(fd).st_size
os.pwrite(fd, b"\\xa5" * 4096, size - 4096)
os.close(fd)
LOG(event="wrote the arena")
wait_usr1()
sys.exit(1)
""", client=False)
check_restart_refused("early_write", "attack4-early", model, script, "changed while the server ran",
                      command=STOPPED + [script])

# 2. The table swapped for a FIFO (nobody ever writes it); the restarted server finds the table
# tensorinit wrote, as a regular file.
script = server_script("fifo_table", "NAME = 'attack4-fifo'\n" + PRELUDE + """
table = os.path.join(SHM, "tensorinit-attack4-fifo.json")
if not first:
    with open(table) as f:
        LOG(event="restarted", regular=os.path.isfile(table), model=json.load(f)["model"])
    sys.exit(0)
wait_named("tensorinit-attack4-fifo.json")
fifo = os.path.join(SHM, "attack4-fifo.tmp")
os.mkfifo(fifo)
os.rename(fifo, table)
LOG(event="swapped the table for a FIFO")
wait_usr1()
sys.exit(1)
""", client=False)
m = write_manifest("attack4-fifo", model, ["mode: signal", "restart: on-failure", "restart_delay: 10ms"])
proc = start(m, STOPPED + [script])
try:
    code = proc.wait(timeout=60)
except Exception:  # noqa: BLE001  hung in open() on the FIFO: what the fix removes
    proc.kill()
    code = "hung: " + open("/proc/%d/wchan" % proc.pid).read() if os.path.exists("/proc/%d" % proc.pid) else "hung"
    proc.wait()
lines = log_lines("fifo_table")
check("fifo: the server restarted and tensorinit exited 0 (no hang on the FIFO)", code == 0, (code, stderr_of(m)))
check("fifo: the restarted server read the table tensorinit wrote (a regular file)",
      len(lines) == 2 and lines[1].get("regular") and lines[1].get("model") == "attack4-fifo", lines)
check("fifo: the rewrite is logged", "was changed or removed while the server ran" in stderr_of(m), stderr_of(m))
check("fifo: nothing left", no_leftovers("attack4-fifo"), [n for n in os.listdir("/dev/shm") if "attack4-fifo" in n])
for n in os.listdir("/dev/shm"):  # a hung (killed) tensorinit leaves its files: not for later tests
    if "attack4-" in n:
        os.unlink(os.path.join("/dev/shm", n))
finish()
