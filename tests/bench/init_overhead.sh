#!/usr/bin/env bash
# What an init costs: `tensorinit run -- /bin/true` beside `/bin/true` alone and whichever of
# tini, dumb-init, catatonit are installed, interleaved (one run of each per round, so load swings
# hit every row alike); min, median and mean in a table. Then, with EARLY=N, the early-SIGTERM
# check: N times, `tensorinit run -- sleep 30` as PID 1 of a fresh PID namespace gets SIGTERM at
# a random instant 0-2 ms after its execve (the window the dynamic loader and static
# initialisers own); a lost signal shows as the 5 s watchdog's SIGKILL. Needs root for EARLY.
# hyperfine is not required (not on PyPI, Debian package only): the timing loop is Python's.
# Not a test: prints a table. Usage: [BASELINE=BIN] [EARLY=N] tests/bench/init_overhead.sh [RUNS]
# (default 500 runs).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
TI=${TENSORINIT:-$ROOT/build/tensorinit}
RUNS=${1:-500}
EARLY=${EARLY:-0}
BASELINE=${BASELINE:-}  # another tensorinit binary (e.g. the previous commit's) for a side-by-side row

exec python3 - "$TI" "$RUNS" "$EARLY" "$BASELINE" <<'PY'
import os, random, shutil, signal, statistics, subprocess, sys, time

ti, runs, early, baseline = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
rows = {"/bin/true": ["/bin/true"], "tensorinit run -- /bin/true": [ti, "run", "--", "/bin/true"],
        "tensorinit --version": [ti, "--version"]}
if baseline:
    rows["baseline run -- /bin/true"] = [baseline, "run", "--", "/bin/true"]
for name, argv in (("tini", ["-s", "--", "/bin/true"]), ("dumb-init", ["/bin/true"]),
                   ("catatonit", ["--", "/bin/true"])):
    path = shutil.which(name)
    if path:
        rows[f"{name} {' '.join(argv)}"] = [path] + argv
devnull = os.open(os.devnull, os.O_RDWR)

def once(argv):
    start = time.perf_counter_ns()
    pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 1)])
    os.waitpid(pid, 0)
    return (time.perf_counter_ns() - start) / 1e6

times = {name: [] for name in rows}
for name, argv in rows.items():  # warm the page cache
    once(argv)
for _ in range(runs):
    for name, argv in rows.items():
        times[name].append(once(argv))
print(f"{runs} runs each, interleaved; ms")
print(f"| {'command':<36} | {'min':>6} | {'median':>6} | {'mean':>6} |")
print(f"|{'-' * 38}|{'-' * 8}|{'-' * 8}|{'-' * 8}|")
for name, t in times.items():
    print(f"| {name:<36} | {min(t):6.2f} | {statistics.median(t):6.2f} | {statistics.fmean(t):6.2f} |")

if early > 0:
    def child_of(pid):
        try:
            with open(f"/proc/{pid}/task/{pid}/children") as f:
                words = f.read().split()
                return int(words[0]) if words else None
        except OSError:
            return None
    lost = other = sent = 0
    for _ in range(early):
        ns = subprocess.Popen(["unshare", "-fp", "--mount-proc", ti, "run", "--", "sleep", "30"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        init = None
        try:
            while init is None or open(f"/proc/{init}/comm").read().strip() != "tensorinit":
                init = init or child_of(ns.pid)
        except OSError:  # gone before we saw it exec (should not happen): counted apart
            ns.wait()
            other += 1
            continue
        time.sleep(random.uniform(0, 0.002))
        os.kill(init, signal.SIGTERM)
        sent += 1
        try:
            code = ns.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.kill(init, signal.SIGKILL)
            code = ns.wait()
            lost += 1
            continue
        if code != 143:
            other += 1
    print(f"early SIGTERM as PID 1: {sent} sent 0-2 ms after execve, {lost} lost, {other} other exit codes")
PY
