#!/usr/bin/env python3
"""attack6: the server's signal dispositions and mask follow tini's rule (inherited SIG_IGN kept,
everything else SIG_DFL, the inherited mask) from both programs (the first stage's plain init,
tensorinit-full directly) and with a manifest in exec, signal after-load and signal early modes,
under a parent that ignores HUP INT QUIT TERM CHLD USR1 and blocks USR2 WINCH PIPE; signals the
parent ignored are still forwarded to a server that handles them (the init's signalfd sees them
while blocked); the exec errors (127/126, one error line) come back with SIGCHLD ignored.
Held on main at 8fc0f3d (init16's changes): a pin, not a fix.
"""
import os
import shutil
import signal
import subprocess
import sys

sys.path.insert(0, os.path.join(os.environ["TESTS_DIR"], "tools"))
import testkit  # noqa: E402
from testkit import check  # noqa: E402

TENSORINIT = os.environ["TENSORINIT"]
FULL = os.path.join(os.path.dirname(TENSORINIT), "tensorinit-full")
TMP = os.environ["TEST_TMP"]
IGNORED = [signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGCHLD, signal.SIGUSR1]
BLOCKED = {signal.SIGUSR2, signal.SIGWINCH, signal.SIGPIPE}
# The server reports what it was started with: grep execs with them as they were handed over
# (a Python probe would not do: the interpreter ignores PIPE and XFSZ itself).
PROBE = ["grep", "-E", "^Sig(Ign|Blk):", "/proc/self/status"]
EXPECTED = "SigBlk: %016x SigIgn: %016x" % (sum(1 << (s - 1) for s in BLOCKED), sum(1 << (s - 1) for s in IGNORED))


def hostile_parent():
    for s in IGNORED:
        signal.signal(s, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_SETMASK, BLOCKED)


def manifest(name, mode):
    path = os.path.join(TMP, name + ".yaml")
    with open(path, "w") as f:
        f.write(f"""version: 1
model:
  name: attack6-{name}
  sources: [{{type: image, path: "{os.path.join(TMP, 'model')}"}}]
handoff:
  mode: {mode}
  command: [grep, -E, "^Sig(Ign|Blk):", /proc/self/status]
""")
    return path


def probe(name, argv):
    r = subprocess.run(argv, preexec_fn=hostile_parent, capture_output=True, text=True, timeout=120)
    check(f"{name}: the server keeps the inherited ignores and mask, nothing else", r.returncode == 0 and
          " ".join(r.stdout.split()) == EXPECTED, f"rc {r.returncode}, {r.stdout.strip()!r}, want {EXPECTED!r}; {r.stderr[-400:]}")


def forwarded(name, binary):
    child = r'''
import signal, sys
def h(n, f):
    print("got", n, flush=True)
    if n == signal.SIGTERM: sys.exit(0)
for s in (signal.SIGHUP, signal.SIGUSR1, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM): signal.signal(s, h)
print("ready", flush=True)
while True: signal.pause()
'''
    p = subprocess.Popen([binary, "run", "--", sys.executable, "-c", child], preexec_fn=hostile_parent,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    got = [p.stdout.readline().strip()]
    for s in (signal.SIGUSR1, signal.SIGHUP, signal.SIGINT, signal.SIGQUIT):
        p.send_signal(s)
        got.append(p.stdout.readline().strip())  # the server answers each before the next is sent
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=60)
    got.append(out.strip())
    check(f"{name}: signals the parent ignored reach the server that handles them",
          got == ["ready", "got 10", "got 1", "got 2", "got 3", "got 15"] and p.returncode == 0,
          f"{got}, rc {p.returncode}; {err[-300:]}")


def exec_errors(name, binary):
    os.makedirs(os.path.join(TMP, "dir"), exist_ok=True)
    script = os.path.join(TMP, "noexec")
    with open(script, "w") as f:
        f.write("echo hi\n")
    os.chmod(script, 0o644)
    for command, code in (("attack6-no-such-command", 127), ("/nonexistent/x", 127), (script, 126),
                          (os.path.join(TMP, "dir"), 126)):
        r = subprocess.run([binary, "run", "--", command], preexec_fn=hostile_parent, capture_output=True, text=True,
                           timeout=60)
        lines = r.stderr.splitlines()
        check(f"{name}: exec of {os.path.basename(command)} exits {code} with one error line",
              r.returncode == code and len(lines) == 1 and lines[0].startswith("tensorinit: error: " + command + ": "),
              f"rc {r.returncode}, {r.stderr!r}")


def main():
    shutil.rmtree(TMP, ignore_errors=True)
    os.makedirs(TMP)
    shm = os.path.join(TMP, "shm")  # exec mode leaves its arena to the server: not in /dev/shm
    os.makedirs(shm)
    os.environ["TENSORINIT_SHM_DIR"] = shm
    subprocess.run([TENSORINIT, "synth", "--size", "1MiB", os.path.join(TMP, "model")], check=True, capture_output=True)
    for name, binary in (("first stage", TENSORINIT), ("tensorinit-full", FULL)):
        probe(f"{name} run --", [binary, "run", "--", *PROBE])
        forwarded(name, binary)
        exec_errors(name, binary)
    for mode in ("exec", "signal\n  start: after-load", "signal\n  start: early"):
        label = mode.replace("\n  start:", "")
        probe(f"manifest {label}", [TENSORINIT, "run", "-f", manifest(label.replace(" ", "-"), mode)])
    testkit.finish()


main()
