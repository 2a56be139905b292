#!/usr/bin/env bash
# What a tensor costs: `tensorinit load` (target host, page cache warm) of models of N F32 tensors,
# N = 1, 1k, 10k, 100k, 500k (issue 15 part 6), on two bytes axes (SIZES):
#   4B-per-tensor  N 4-byte tensors, beside the same bytes in min(N, 100) tensors: the per-tensor
#                  cost against almost nothing;
#   1GiB (or any SIZE with a KiB/MiB/GiB suffix)  the same total for every N (rounded down so that
#                  every N divides it: ~10 KiB per tensor at 100k, as a per-expert MoE has), beside
#                  that total in 100 tensors: the goal "100k tensors within 1.1x of 100 tensors".
# Interleaved: every round runs every model once, in an order that rotates. Prints medians with min
# and max of the wall time, of the CPU time (user + system, which a busy machine inflates far less
# than the wall), of the report's index+plan and table phases, the ratios to the baseline, the CPU
# per tensor over the baseline's, and (4-byte rows) how long a SIGTERM sent after STOP_AFTER seconds
# (default 0.2) took to end the load. With BASELINE=BIN, every load runs with that binary too,
# beside this one's in the same round (order alternating), and the table adds its CPU time:
# before/after in one run. Models are made once under BENCH_DIR (the 1 GiB axis: ~6 GB of disk).
# CACHE=read (default): each model is dropped from the page cache and read back before the rounds,
# so every file's page cache is as a read from disk leaves it, whatever happened to it before (the
# mapped path's cost depends on it: a file just written by `synth` maps at 37-50 ms of CPU per GiB,
# the same file read back at 3-7 ms, measured here; and which model was written last is luck).
# CACHE=keep: as found (the state an image just pulled has).
# Not a test: prints a table.
# Usage: [TENSORINIT=BIN] [BASELINE=BIN] [COUNTS="1 1000 ..."] [SIZES="4B-per-tensor 1GiB"] [ROUNDS=5]
#        [BENCH_DIR=DIR] [CACHE=read|keep] tests/bench/tensor_count.sh
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
TI=${TENSORINIT:-$ROOT/build/tensorinit}
[[ -x $TI ]] || { echo "tensor_count.sh: no tensorinit at $TI (set TENSORINIT)" >&2; exit 1; }
DIR=${BENCH_DIR:-/var/tmp/tensorinit-bench}/tensor-count
mkdir -p "$DIR"

exec python3 - "$TI" "${BASELINE:-}" "$DIR" "${ROUNDS:-5}" "${STOP_AFTER:-0.2}" \
  "${COUNTS:-1 1000 10000 100000 500000}" "${SIZES:-4B-per-tensor 1GiB}" "${CACHE:-read}" <<'PY'
import json, math, os, resource, signal, statistics, subprocess, sys, time

ti, baseline, d = sys.argv[1], sys.argv[2], sys.argv[3]
rounds, stop_after = int(sys.argv[4]), float(sys.argv[5])
counts = [int(c) for c in sys.argv[6].split()]
sizes = sys.argv[7].split()
cache = sys.argv[8]
if cache not in ("read", "keep"):
    sys.exit(f"tensor_count.sh: CACHE={cache}: read or keep")

def model(name, total, count):
    """A model of `total` bytes in `count` equal F32 tensors (count divides total / 4), made once."""
    path = f"{d}/{name}"
    if not os.path.isfile(f"{path}/model.safetensors"):
        subprocess.run([ti, "synth", "--size", str(total), "--dtype", "f32", "--tensors", str(count), path],
                       check=True, stderr=subprocess.DEVNULL)
    with open(f"{path}.yaml", "w") as f:
        f.write(f'version: 1\nmodel:\n  name: count-{name}\n  sources: [{{type: image, path: "{path}"}}]\n'
                'stage: {target: host}\nhandoff: {mode: none}\n')
    return name

def parse_size(s):
    units = {"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}
    for u, k in units.items():
        if s.endswith(u):
            return int(float(s[:-len(u)]) * k)
    return int(s)

rows = []  # (size label, N, total bytes, many-tensor model, baseline model)
for s in sizes:
    if s == "4B-per-tensor":
        for n in counts:
            rows.append((s, n, 4 * n, model(f"n{n}-t{n}", 4 * n, n), model(f"n{n}-t{min(n, 100)}", 4 * n, min(n, 100))))
        continue
    elements_lcm = math.lcm(100, *counts)
    total = 4 * (parse_size(s) // 4 // elements_lcm * elements_lcm)
    if total == 0:
        sys.exit(f"tensor_count.sh: {s} is too small for COUNTS")
    base = model(f"b{total}-t100", total, 100)
    for n in counts:
        rows.append((s, n, total, model(f"b{total}-t{n}", total, n), base))
models = list(dict.fromkeys(m for r in rows for m in r[3:]))
for m in models:  # warm: this measures the work per tensor, not the disk
    if cache == "read":  # dropped first (written back, then evicted), then read below
        fd = os.open(f"{d}/{m}/model.safetensors", os.O_RDONLY)
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)
    with open(f"{d}/{m}/model.safetensors", "rb") as f:
        while f.read(1 << 24):
            pass

runs = {m: [] for m in models}
base_runs = {m: [] for m in models}

def child_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime

def load(m, binary=ti):
    report = f"{d}/{m}.report.json"
    cpu0, t0 = child_cpu(), time.perf_counter()
    subprocess.run([binary, "load", "-f", f"{d}/{m}.yaml", "--report", report], check=True, stderr=subprocess.DEVNULL)
    wall, cpu = time.perf_counter() - t0, child_cpu() - cpu0
    s = json.load(open(report))["seconds"]
    return {"wall": wall, "cpu": cpu, "index": s.get("index", 0) + s.get("plan", 0), "table": s.get("table", 0)}

def stop_latency(m):
    p = subprocess.Popen([ti, "load", "-f", f"{d}/{m}.yaml"], stderr=subprocess.DEVNULL)
    time.sleep(stop_after)
    t0 = time.perf_counter()
    p.send_signal(signal.SIGTERM)
    code = p.wait()
    return time.perf_counter() - t0, code

for r in range(rounds):
    order = models[r % len(models):] + models[:r % len(models)]
    for m in order:
        if baseline and r % 2:
            base_runs[m].append(load(m, baseline))
        runs[m].append(load(m))
        if baseline and not r % 2:
            base_runs[m].append(load(m, baseline))
stops = {r[3]: [stop_latency(r[3]) for _ in range(3)] for r in rows if r[0] == "4B-per-tensor" and r[1] >= 1000}

def med(m, key, which=runs):
    return statistics.median(x[key] for x in which[m])

def cell(m, key, which=runs):
    values = [x[key] for x in which[m]]
    return f"{statistics.median(values):.3f} ({min(values):.3f}-{max(values):.3f})"

print(f"tensorinit load, target host, page cache warm; {rounds} interleaved rounds; seconds, median (min-max)")
print(f"page cache: {cache}; load average {os.getloadavg()[0]:.1f} at the end; baseline: the same bytes in min(N, 100) tensors")
before = "BASELINE's cpu | BASELINE's us/tensor | " if baseline else ""
print(f"| bytes | tensors | wall | cpu | {before}index+plan | table | baseline wall | baseline cpu | wall ratio | "
      "cpu ratio | us of cpu per tensor | SIGTERM to exit (exit code) |")
print("|" + "---|" * (12 + (2 if baseline else 0)))
for size, n, total, m, base in rows:
    per_tensor = lambda which: "" if n <= 100 else f"{(med(m, 'cpu', which) - med(base, 'cpu', which)) / (n - 100) * 1e6:.2f}"
    stop = ", ".join(f"{t:.3f} ({c})" for t, c in stops.get(m, []))
    before = f"{cell(m, 'cpu', base_runs)} | {per_tensor(base_runs)} | " if baseline else ""
    label = f"{total:,}" if size == "4B-per-tensor" else f"{size} ({total:,})"
    print(f"| {label} | {n:,} | {cell(m, 'wall')} | {cell(m, 'cpu')} | {before}{cell(m, 'index')} | {cell(m, 'table')} | "
          f"{cell(base, 'wall')} | {cell(base, 'cpu')} | {med(m, 'wall') / med(base, 'wall'):.2f} | "
          f"{med(m, 'cpu') / med(base, 'cpu'):.2f} | {per_tensor(runs)} | {stop} |")
PY
