#!/usr/bin/env bash
# What an init costs: `tensorinit run -- /bin/true` (the static first stage's own plain init)
# beside `/bin/true` alone, tensorinit-full (the dynamic program the first stage execs for
# everything else; `tensorinit --version` minus `tensorinit-full --version` is that exec) and
# whichever of tini, dumb-init, catatonit are installed, interleaved (one run of each per round, so load swings
# hit every row alike); min, median and mean in a table. Then, with EARLY=N, the early-SIGTERM
# check: N times, `tensorinit run -- sleep 30` as PID 1 of a fresh PID namespace gets SIGTERM at
# a random instant EARLY_MS (default 2-20) ms after its start (issue 15's protocol: the start of
# `unshare`), or with EARLY_AFTER=execve, EARLY_MS (then default 0-2) ms after tensorinit's execve
# was seen (the window the dynamic loader and static initialisers owned before the static first
# stage); a lost signal shows as the 5 s watchdog's SIGKILL, and is told apart when /proc showed
# an empty mask just before it was sent (the kernel's window before the first instruction, which
# a preempted exec on a loaded machine stretches). The same trials, interleaved, go to catatonit,
# tini and dumb-init (and BASELINE) when installed, so the table tells the kernel's window, which
# every init has, from an init's own (EARLY_INITS=tensorinit,tini picks some). EARLY_WATCHDOG (default 5) s: how long a trial waits before
# it counts the signal lost. Needs root for EARLY.
# hyperfine is not required (not on PyPI, Debian package only): the timing loop is Python's, which
# also reads each run's CPU time and page faults from wait4 (the process and what it waited for):
# on a machine shared with builds, wall times swing with the load and those two barely move.
# The system-call count of each row (the command and what it runs, `strace -f -c`, once, outside
# the timed runs; left out without strace) is the steadiest figure of all.
# The peers (tini, dumb-init, catatonit, hyperfine) are installed from Debian when missing, as root.
# Not a test: prints a table. Usage: [BASELINE=BIN] [EARLY=N] tests/bench/init_overhead.sh [RUNS]
# (default 500 runs).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
TI=${TENSORINIT:-$ROOT/build/tensorinit}
RUNS=${1:-500}
EARLY=${EARLY:-0}
EARLY_AFTER=${EARLY_AFTER:-start}
if [ "$EARLY_AFTER" = execve ]; then EARLY_MS=${EARLY_MS:-0-2}; else EARLY_MS=${EARLY_MS:-2-20}; fi
BASELINE=${BASELINE:-}  # another tensorinit binary (e.g. the previous commit's) for a side-by-side row
missing=()
for tool in tini dumb-init catatonit hyperfine; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if ((${#missing[@]})) && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 ||
    echo "init_overhead.sh: could not install ${missing[*]}; their rows are left out" >&2
fi

exec python3 - "$TI" "$RUNS" "$EARLY" "$BASELINE" "$EARLY_AFTER" "$EARLY_MS" <<'PY'
import os, random, shutil, signal, statistics, subprocess, sys, time

ti, runs, early, baseline = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
early_after = sys.argv[5]
early_lo, early_hi = (float(x) / 1e3 for x in sys.argv[6].split("-"))
rows = {"/bin/true": ["/bin/true"], "tensorinit run -- /bin/true": [ti, "run", "--", "/bin/true"],
        "tensorinit --version": [ti, "--version"]}
full = os.path.join(os.path.dirname(ti), "tensorinit-full")
if os.access(full, os.X_OK):  # what the first stage execs for everything but the plain init
    rows["tensorinit-full run -- /bin/true"] = [full, "run", "--", "/bin/true"]
    rows["tensorinit-full --version"] = [full, "--version"]
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
    _, _, usage = os.wait4(pid, 0)
    wall = (time.perf_counter_ns() - start) / 1e6
    return wall, (usage.ru_utime + usage.ru_stime) * 1e3, usage.ru_minflt

def syscalls(argv):  # every process's calls, from strace's summary line "100.00 ... total"
    if not shutil.which("strace"):
        return None
    out = subprocess.run(["strace", "-f", "-c", "-o", "/dev/stderr", *argv], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True).stderr
    totals = [l.split() for l in out.splitlines() if l.rstrip().endswith(" total")]
    return int(totals[-1][3]) if totals and len(totals[-1]) >= 5 else None

counts = {name: syscalls(argv) for name, argv in rows.items()}
times = {name: [] for name in rows}
# Each program read back from disk, as from an image layer: a file just written (the linker's
# output, a copy, strip's) sits in the page cache in large folios, and faults fewer times (85
# against 96 measured for the same binary), which would flatter a fresh build against the peers.
for argv in rows.values():
    try:
        fd = os.open(shutil.which(argv[0]) or argv[0], os.O_RDONLY)
        os.fsync(fd)  # dirty pages are not dropped
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)
    except OSError:
        pass
for name, argv in rows.items():  # warm the page cache
    once(argv)
for _ in range(runs):
    for name, argv in rows.items():
        times[name].append(once(argv))
print(f"{runs} runs each, interleaved; ms; load average {os.getloadavg()[0]:.1f}")
print(f"| {'command':<36} | {'min':>6} | {'median':>6} | {'mean':>6} | {'cpu med':>7} | {'faults':>6} | {'syscalls':>8} |")
print(f"|{'-' * 38}|{'-' * 8}|{'-' * 8}|{'-' * 8}|{'-' * 9}|{'-' * 8}|{'-' * 10}|")
for name, runs_of in times.items():
    t = [r[0] for r in runs_of]
    print(f"| {name:<36} | {min(t):6.2f} | {statistics.median(t):6.2f} | {statistics.fmean(t):6.2f} | "
          f"{statistics.median(r[1] for r in runs_of):7.2f} | {statistics.median(r[2] for r in runs_of):6.0f} | "
          f"{counts[name] if counts[name] is not None else '-':>8} |")

if early > 0:
    def child_of(pid):
        try:
            with open(f"/proc/{pid}/task/{pid}/children") as f:
                words = f.read().split()
                return int(words[0]) if words else None
        except OSError:
            return None
    # The same protocol for every init at hand, interleaved (one trial of each per round): whether
    # a loss is the kernel's window (execve to the first instruction, every init has it) or the
    # init's own (its C library's start-up before it blocks or handles SIGTERM).
    inits = {"tensorinit": [ti, "run", "--"]}
    if baseline:
        inits["baseline"] = [baseline, "run", "--"]
    for name, argv in (("catatonit", ["--"]), ("tini", ["--"]), ("dumb-init", [])):
        path = shutil.which(name)
        if path:
            inits[name] = [path] + argv
    if os.environ.get("EARLY_INITS"):  # e.g. EARLY_INITS=tensorinit,catatonit: only those
        inits = {name: argv for name, argv in inits.items() if name in os.environ["EARLY_INITS"].split(",")}
    tally = {name: {"sent": 0, "lost": 0, "unmasked": 0, "other": 0} for name in inits}

    def trial(argv, t):
        started = time.perf_counter()
        ns = subprocess.Popen(["unshare", "-fp", "--mount-proc", *argv, "sleep", "30"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        init = None
        comm = os.path.basename(argv[0])[:15]
        try:  # unshare forks the namespace's PID 1, which then execs the init (before that, a
            # SIGTERM would hit unshare's code, which no init can help)
            while init is None or open(f"/proc/{init}/comm").read().strip() != comm:
                init = init or child_of(ns.pid)
        except OSError:  # gone before we saw it exec (should not happen): counted apart
            ns.wait()
            t["other"] += 1
            return
        if early_after == "execve":
            time.sleep(random.uniform(early_lo, early_hi))
        else:
            time.sleep(max(0.0, started + random.uniform(early_lo, early_hi) - time.perf_counter()))
        try:  # the mask just before the signal: empty means it went into the window before the
            # init blocked anything (for tensorinit, the kernel's before the first instruction)
            with open(f"/proc/{init}/status") as f:
                unmasked = any(l.startswith("SigBlk:") and int(l.split()[1], 16) == 0 for l in f)
        except OSError:
            unmasked = False
        os.kill(init, signal.SIGTERM)
        t["sent"] += 1
        try:
            code = ns.wait(timeout=watchdog)
        except subprocess.TimeoutExpired:
            os.kill(init, signal.SIGKILL)
            ns.wait()
            t["lost"] += 1
            t["unmasked"] += unmasked
            return
        if code != 143:
            t["other"] += 1

    watchdog = float(os.environ.get("EARLY_WATCHDOG", "5"))
    for _ in range(early):
        for name, argv in inits.items():
            trial(argv, tally[name])
    print(f"early SIGTERM as PID 1 of a fresh PID namespace, {sys.argv[6]} ms after {early_after}, "
          f"interleaved; lost = not gone {watchdog:g} s later; load average {os.getloadavg()[0]:.1f}")
    print(f"| {'init':<10} | {'sent':>5} | {'lost':>4} | {'of them, mask empty':>19} | {'other exit':>10} |")
    print(f"|{'-' * 12}|{'-' * 7}|{'-' * 6}|{'-' * 21}|{'-' * 12}|")
    for name, t in tally.items():
        print(f"| {name:<10} | {t['sent']:>5} | {t['lost']:>4} | {t['unmasked']:>19} | {t['other']:>10} |")
PY
