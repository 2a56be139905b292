"""handoff.restart against real processes: a crashing server restarted on the same arena (same
inode, tensorinit reads nothing from storage again: its /proc/PID/io rchar, read by the server,
does not grow), for host and, with the CUDA double, cuda (same IPC handles); max_restarts and the
doubling delay; SIGTERM during a restart delay; an arena scribbled on by the server refused; exec
mode refused (78). Waits are on files and processes (supervision_lib.wait_for)."""

import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from supervision_lib import (TENSORINIT, TEST_TMP, check, check_restart_refused, finish, fresh_tmp,  # noqa: E402
                             log_lines, no_leftovers, report, server_script, start, stderr_of, stop, synth, wait_for,
                             write_manifest)

fresh_tmp()
MODEL_BYTES = 16 << 20
model = synth("16MiB")

# Each start: maps every tensor (checks the bytes' sum), logs the arena's inode (or the IPC handles)
# and tensorinit's rchar (every byte it read(2), storage or /proc); the first `crashes` starts exit 3, the next says ready and waits.
CRASHER = """
signal.signal(signal.SIGUSR1, lambda *a: None)  # ends tensorinit's /proc polling for the ready signal
crashes = int(sys.argv[1])
w = tc.wait_and_open()
t = w.table
arenas = [a.get("path") or a["ipc"]["handle"] for a in t["arenas"]]
inodes = [os.stat(a["path"]).st_ino for a in t["arenas"] if "path" in a]
import hashlib
total = hashlib.sha256()
if "path" in t["arenas"][0]:
    for name in w.names(): total.update(w.raw(name))
total = total.hexdigest()
rchar = [int(l.split()[1]) for l in open("/proc/%d/io" % os.getppid()) if l.startswith("rchar")][0]
starts = sum('"start"' in l for l in open(os.path.join(TMP, "crash.log"))) if os.path.exists(os.path.join(TMP, "crash.log")) else 0
LOG(event="start", arenas=arenas, inodes=inodes, sum=total, rchar=rchar, t=time.monotonic())
if starts < crashes:  # its own reads join tensorinit's rchar when it is reaped: logged to subtract
    own = [int(l.split()[1]) for l in open("/proc/self/io") if l.startswith("rchar")][0]
    LOG(event="exit", rchar=own)
    sys.exit(3)
tc.notify_ready()
time.sleep(3600)
"""


def restart_case(name, stage, binary=None, env=None):
    for f in ("crash.log",):
        if os.path.exists(os.path.join(TEST_TMP, f)):
            os.unlink(os.path.join(TEST_TMP, f))
    script = server_script("crash", CRASHER)
    m = write_manifest(name, model, ["mode: signal", "restart: on-failure", "max_restarts: 5", "restart_delay: 50ms",
                                     "ready: {socket: true, timeout: 60s}"], stage=stage)
    proc = start(m, ["python3", script, "2"], binary=binary, env=env)
    got = wait_for(name + " ready", lambda: os.path.exists(os.path.join(TEST_TMP, "ready")), proc)
    lines = log_lines("crash")
    starts = [x for x in lines if x["event"] == "start"]
    exits = [x for x in lines if x["event"] == "exit"]
    check(name + ": ready after two crashes, three starts", got and len(starts) == 3, (starts, stderr_of(m)))
    if len(starts) == 3:
        check(name + ": every start got the same arenas", all(s["arenas"] == starts[0]["arenas"] for s in starts), starts)
        check(name + ": same inode for each (host)", all(s["inodes"] == starts[0]["inodes"] for s in starts), starts)
        check(name + ": same bytes for each", all(s["sum"] == starts[0]["sum"] for s in starts), starts)
        # tensorinit's own reads between the first start and the third: its rchar includes the
        # reaped servers' (the kernel adds a child's I/O counts to its parent's), subtracted.
        grew = starts[2]["rchar"] - starts[0]["rchar"] - sum(x["rchar"] for x in exits)
        check(name + ": tensorinit read nothing from storage again (rchar grew %d bytes)" % grew,
              0 <= grew < MODEL_BYTES // 16, starts)
    r = report(name)
    check(name + ": the report counts 2 restarts", r.get("restarts") == 2 and r["ok"], r)
    check(name + ": each restart logged", stderr_of(m).count("restart ") >= 2, stderr_of(m))
    code = stop(proc)
    check(name + ": SIGTERM ends it (143)", code == 143, code)
    check(name + ": nothing left in /dev/shm", no_leftovers(name))
    return m


# 1. host
restart_case("restart-host", "{target: host}")
m = os.path.join(TEST_TMP, "restart-host.yaml")
check("host: the digest check is timed in the log", "checked unchanged" in stderr_of(m), stderr_of(m))

# 2. cuda through the CUDA runtime double
cd = os.environ.get("TENSORINIT_CUDADOUBLE")
if cd:
    dump = os.path.join(TEST_TMP, "dump")
    os.makedirs(dump, exist_ok=True)
    restart_case("restart-cuda", "{target: cuda, devices: [0]}", binary=cd,
                 env={"TENSORINIT_CUDA_DOUBLE_DEVICES": "1", "TENSORINIT_CUDA_DOUBLE_DUMP": dump})
    check("cuda: the device arena was freed once, at the end", os.listdir(dump) == ["cuda0.arena"], os.listdir(dump))
else:
    print("skip - cuda restart: no TENSORINIT_CUDADOUBLE")

# 3. limits and backoff: always failing, max_restarts 3, delays 100, 200, 400 ms at least.
if os.path.exists(os.path.join(TEST_TMP, "crash.log")):
    os.unlink(os.path.join(TEST_TMP, "crash.log"))
script = server_script("crash", CRASHER)
m = write_manifest("restart-limit", model, ["mode: signal", "restart: on-failure", "max_restarts: 3",
                                            "restart_delay: 100ms"])
proc = start(m, ["python3", script, "99"])
code = proc.wait(timeout=90)
starts = [x for x in log_lines("crash") if x["event"] == "start"]
check("limit: exit with the server's last code (3)", code == 3, (code, stderr_of(m)))
check("limit: 1 start + 3 restarts", len(starts) == 4, starts)
gaps = [b["t"] - a["t"] for a, b in zip(starts, starts[1:])]
check("limit: the delay doubles (gaps >= 0.1, 0.2, 0.4 s)", len(gaps) == 3 and all(g >= d for g, d in zip(gaps, (0.1, 0.2, 0.4))),
      gaps)
check("limit: the report counts 3 restarts", report("restart-limit").get("restarts") == 3, report("restart-limit"))
check("limit: what was staged is removed", no_leftovers("restart-limit"))

# 4. SIGTERM during a restart delay (one of ten minutes): exit 143 at once, nothing left.
os.unlink(os.path.join(TEST_TMP, "crash.log"))
m = write_manifest("restart-term", model, ["mode: signal", "restart: always", "restart_delay: 10m"])
proc = start(m, ["python3", script, "99"])
got = wait_for("the restart delay", lambda: "restart 1 of" in stderr_of(m), proc)
code = stop(proc)
check("term in delay: exit 143", got and code == 143, (code, stderr_of(m)))
check("term in delay: no second start", len([x for x in log_lines("crash") if x["event"] == "start"]) == 1, log_lines("crash"))
check("term in delay: nothing left", no_leftovers("restart-term"))

# 5. A server that scribbles on the arena through a writable mapping: the restart is refused (65).
script = server_script("scribble", """
w = tc.wait_and_open()
path = w.table["arenas"][0]["path"]
import mmap
fd = os.open(path, os.O_RDWR)
mm = mmap.mmap(fd, 4096, mmap.MAP_SHARED, mmap.PROT_WRITE | mmap.PROT_READ)
mm[100] ^= 0xff
mm.close()
LOG(event="scribbled")
sys.exit(1)
""")
check_restart_refused("scribble", "restart-scribble", model, script, "changed")

# 6. always restarts a clean exit too (max 1).
script = server_script("clean", "LOG(event='start')\n")
m = write_manifest("restart-always", model, ["mode: signal", "restart: always", "max_restarts: 1",
                                             "restart_delay: 10ms"])
code = start(m, ["python3", script]).wait(timeout=90)
check("always: a clean exit restarted once, then exit 0", code == 0 and len(log_lines("clean")) == 2,
      (code, log_lines("clean")))

# 7. exec mode cannot restart: a manifest error with its position.
m = write_manifest("restart-exec", model, ["mode: exec", "restart: on-failure"])
p = subprocess.run([TENSORINIT, "run", "-f", m, "--", "true"], capture_output=True, text=True)
check("exec: restart refused as a manifest error (78) with file:line:col",
      p.returncode == 78 and (m + ":6:") in p.stderr and "handoff.mode: signal" in p.stderr, (p.returncode, p.stderr))
finish()
