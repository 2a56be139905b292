"""The runs of tests/bench/early_start.sh (which makes the model and the server script).

Usage: early_start.py DIR ROUNDS PYTHON SIZE CASE...; a CASE is NAME|BIN|MODE|START|WAIT|PREP[|STAGE]
(MODE exec, signal or none for `load`; PREP cold, or warm: the server's own files (python, torch)
read into the page cache after the drop, the weights cold; STAGE: more `stage:` keys, e.g.
"readers: 2").

While each run goes, a thread samples /proc every 20 ms: tensorinit's CPU time, the server's (and
its descendants') read_bytes and CPU time, the machine's busy time. The staging window is from the
start to the report's `stage` event; the overlap columns are the counters at its end (linear
between samples). The disk-share bound is what staging could keep if the disk were the only thing
shared and gave its solo rate to both: stage_bytes / (stage_bytes + server's read_bytes); the
disk total is both processes' read_bytes over the window against the solo load's. The server's
import is from its first line to `import torch` done (server.py's marks).
"""
import json, os, statistics, subprocess, sys, threading, time

TICK = os.sysconf("SC_CLK_TCK")
CORES = os.cpu_count()


def read_bytes(pid):
    try:
        for line in open(f"/proc/{pid}/io"):
            if line.startswith("read_bytes:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pid, reaped=False):
    """utime+stime of a process (all its threads), with its reaped children's when `reaped`."""
    try:
        f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    n = int(f[11]) + int(f[12]) + (int(f[13]) + int(f[14]) if reaped else 0)
    return n / TICK


def children(pid):
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            out += [int(c) for c in open(f"/proc/{pid}/task/{tid}/children").read().split()]
    except OSError:
        pass
    return out


def machine_busy():
    v = [int(x) for x in open("/proc/stat").readline().split()[1:9]]
    return (sum(v) - v[3] - v[4]) / TICK  # all but idle and iowait


class Sampler(threading.Thread):
    """Counters of tensorinit (pid) and of its server (its children and theirs) every 20 ms."""

    def __init__(self, pid, server_is_child):
        super().__init__(daemon=True)
        self.pid, self.server_is_child, self.samples, self.done = pid, server_is_child, [], threading.Event()

    def sample(self):
        srv = []  # live processes only: one that is reaped is in its parent's counters from then on
        if self.server_is_child:
            todo = children(self.pid)
            while todo:
                p = todo.pop()
                srv.append(p)
                todo += children(p)
        io = sum(read_bytes(p) for p in srv)
        cpu = sum(cpu_seconds(p, reaped=True) for p in srv)
        self.samples.append((time.time(), cpu_seconds(self.pid), io, cpu, machine_busy(), read_bytes(self.pid)))

    def run(self):
        while not self.done.wait(0.02):
            self.sample()

    def at(self, t):
        """The counters at time t, linear between the samples around it."""
        s = self.samples
        if not s:
            return None
        if t <= s[0][0]:
            return s[0]
        for a, b in zip(s, s[1:]):
            if a[0] <= t <= b[0]:
                w = (t - a[0]) / (b[0] - a[0]) if b[0] > a[0] else 0
                return tuple(x + w * (y - x) for x, y in zip(a, b))
        return s[-1]


def read_ahead_kb(path):
    """The read-ahead of the block device holding path (it sizes the server's mmap read-around)."""
    st = os.stat(path)
    base = f"/sys/dev/block/{os.major(st.st_dev)}:{os.minor(st.st_dev)}"
    for q in (f"{base}/queue/read_ahead_kb", f"{base}/../queue/read_ahead_kb"):
        if os.path.exists(q):
            return open(q).read().strip()
    return "?"


def drop_caches():
    subprocess.run(["sync"])
    open("/proc/sys/vm/drop_caches", "w").write("3\n")


def once(d, python, name, ti, mode, start, wait, prep, stage=""):
    drop_caches()
    if prep == "warm":  # the server's own files into the page cache; the weights stay cold. Twice: pages
        for _ in range(2):  # the first import's read-ahead marked start the next window when touched
            subprocess.run([python, "-c", "import json, mmap, torch"], check=True)
    marks = f"{d}/{name}.marks"
    if os.path.exists(marks):
        os.unlink(marks)
    cmd = [ti, "run" if mode != "none" else "load", "-f", f"{d}/{name}.yaml"]
    if mode != "none":
        cmd += ["--", python, f"{d}/server.py", marks, wait]
    busy0 = machine_busy()
    t0 = time.time()
    proc = subprocess.Popen(cmd, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    sampler = Sampler(proc.pid, server_is_child=mode == "signal")
    sampler.start()
    code = proc.wait()
    sampler.done.set()
    sampler.join()
    if code != 0:
        raise SystemExit(f"early_start.py: {' '.join(cmd)} exited {code}")
    end = time.time() - t0
    report = json.load(open(f"{d}/{name}.report.json"))
    row = {"gbps": report["throughput_gbps"], "end": end, "bytes": report["bytes"],
           "stage_s": report["seconds"]["stage"]}
    if mode != "none":
        for line in open(marks):
            what, at = line.split()
            row[what] = float(at) - t0
        if "imported" in row and "first" in row:
            row["import_s"] = row["imported"] - row["first"]
    if mode == "signal" and sampler.samples:  # the server's whole run (its import, then the mapping)
        row["server_mb_total"] = max(x[2] for x in sampler.samples) / 1e6
    staged = next((e["at"] for e in report.get("timeline", []) if e["event"] == "stage"), None)
    if staged is not None and mode != "exec":  # exec: the server is tensorinit's process, after staging
        s = sampler.at(t0 + staged)
        if s:
            row.update(window=staged, stage_cpu=s[1], busy=(s[4] - busy0) / (staged * CORES), stage_mb=s[5] / 1e6)
            if mode == "signal":
                row.update(server_mb=s[2] / 1e6, server_cpu=s[3])
            row["disk_gbps"] = (s[5] + (s[2] if mode == "signal" else 0)) / 1e9 / staged  # both, over the window
    return row


def med(rows, key):
    v = [x[key] for x in rows if key in x]
    return statistics.median(v) if v else None


def cell(rows, key, fmt="{:.2f}"):
    v = [x[key] for x in rows if key in x]
    if not v:
        return "-"
    return f"{fmt.format(statistics.median(v))} ({fmt.format(min(v))}-{fmt.format(max(v))})"


def main():
    d, rounds, python, size = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    cases = [c.split("|") for c in sys.argv[5:]]
    for name, ti, mode, start, wait, prep, *stage in cases:
        extra = f", {stage[0]}" if stage and stage[0] else ""
        with open(f"{d}/{name}.yaml", "w") as f:
            f.write(f"version: 1\nmodel:\n  name: early-{name.lower()}\n  sources: [{{type: image, path: \"{d}/model-{size}\"}}]\n"
                    f"stage: {{target: host{extra}}}\nhandoff: {{mode: {mode}, start: {start}, signal: SIGUSR1}}\n"
                    f"report: {d}/{name}.report.json\n")
    results = {c[0]: [] for c in cases}
    for r in range(rounds):
        for c in cases[r % len(cases):] + cases[:r % len(cases)]:
            results[c[0]].append(once(d, python, *c))
    with open(f"{d}/results-{time.strftime('%Y%m%dT%H%M%S')}.json", "w") as f:
        json.dump(results, f, indent=1)

    solo = med(results["solo"], "gbps")
    solo_disk = med(results["solo"], "disk_gbps")
    print(f"cold node (page cache dropped before each run), {rounds} interleaved rounds, {CORES} cores; seconds from "
          f"tensorinit's start; load average {os.getloadavg()[0]:.1f}. Overlap columns: the staging window "
          f"(start to the report's stage event); bound: what disk sharing alone allows, vs solo")
    print("| handoff | server's first line | server ready | server's import s | staging GB/s | vs solo load "
          "| server disk MB in window | disk-share bound | disk total vs solo | server CPU s in window | staging CPU s "
          "| machine busy |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, *_ in cases:
        rows = results[name]
        if name == "after-load":
            server_alone = cell(rows, "server_mb_total", "{:.0f}")
        for x in rows:
            if "server_mb" in x:
                x["bound"] = x["bytes"] / (x["bytes"] + x["server_mb"] * 1e6)
            if "disk_gbps" in x and solo_disk:
                x["disk_share"] = x["disk_gbps"] / solo_disk
        print(f"| {name} | {cell(rows, 'first')} | {cell(rows, 'ready')} | {cell(rows, 'import_s')} | {cell(rows, 'gbps')} "
              f"| {med(rows, 'gbps') / solo:.2f} | {cell(rows, 'server_mb', '{:.0f}')} | {cell(rows, 'bound')} "
              f"| {cell(rows, 'disk_share')} "
              f"| {cell(rows, 'server_cpu')} | {cell(rows, 'stage_cpu')} | {cell(rows, 'busy', '{:.0%}')} |")
    if "after-load" in results:
        print(f"The server's own disk reads, started on a cold node after staging (after-load, its whole run): "
              f"{server_alone} MB; read_ahead_kb of the disk holding its python: {read_ahead_kb(python)}, "
              f"holding the model: {read_ahead_kb(d)}")


main()
