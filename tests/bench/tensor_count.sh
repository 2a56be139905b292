#!/usr/bin/env bash
# What a tensor costs: `tensorinit load` (target host, page cache warm) of models of N 4-byte F32
# tensors, N = 1, 1k, 10k, 100k, 500k (issue 15 part 6), each beside the same bytes in
# min(N, 100) tensors (the baseline: the cost of the bytes alone), interleaved: every round runs
# every model once, in an order that rotates. Prints medians with min and max of the wall time,
# of the CPU time (user + system, which a busy machine inflates far less than the wall), of the
# report's index+plan and table phases, the ratio to the baseline, and how long a SIGTERM sent
# after STOP_AFTER seconds (default 0.2) took to end the load. With BASELINE=BIN, every load runs
# with that binary too, beside this one's in the same round (order alternating), and the table
# adds its CPU time: before/after in one run. Not a test: prints a table.
# Usage: [TENSORINIT=BIN] [BASELINE=BIN] [COUNTS="1 1000 ..."] [ROUNDS=5] [BENCH_DIR=DIR] tests/bench/tensor_count.sh
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
TI=${TENSORINIT:-$ROOT/build/tensorinit}
COUNTS=${COUNTS:-1 1000 10000 100000 500000}
ROUNDS=${ROUNDS:-5}
DIR=${BENCH_DIR:-/var/tmp/tensorinit-bench}/tensor-count
STOP_AFTER=${STOP_AFTER:-0.2}
[[ -x $TI ]] || { echo "tensor_count.sh: no tensorinit at $TI (set TENSORINIT)" >&2; exit 1; }
mkdir -p "$DIR"

models=()
for n in $COUNTS; do
  base=$((n < 100 ? n : 100))
  for pair in "$n:$n" "$n:$base"; do
    count=${pair#*:}; name=n${n}-t${count}
    if [[ ! -f $DIR/$name/model.safetensors ]]; then
      # Same bytes: N F32 elements in `count` tensors (N/count elements each; N is a multiple here).
      "$TI" synth --size $((4 * n)) --dtype f32 --tensors "$count" "$DIR/$name" 2>/dev/null
    fi
    printf 'version: 1\nmodel:\n  name: count-%s\n  sources: [{type: image, path: "%s"}]\nstage: {target: host}\nhandoff: {mode: none}\n' \
      "$name" "$DIR/$name" >"$DIR/$name.yaml"
    [[ " ${models[*]} " == *" $name "* ]] || models+=("$name")
  done
done
cat "$DIR"/*/model.safetensors >/dev/null  # warm: this measures the work per tensor, not the disk

exec python3 - "$TI" "${BASELINE:-}" "$DIR" "$ROUNDS" "$STOP_AFTER" "${models[@]}" <<'PY'
import json, os, resource, signal, statistics, subprocess, sys, time

ti, baseline, d, rounds, stop_after, models = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5]), sys.argv[6:]
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
stops = {}
for m in models:
    if m.split("-t")[0][1:] == m.split("-t")[1]:  # the many-tensor model of each pair
        stops[m] = [stop_latency(m) for _ in range(3)]

def cell(values):
    return f"{statistics.median(values):.3f} ({min(values):.3f}-{max(values):.3f})"

print(f"tensorinit load, target host, page cache warm; {rounds} interleaved rounds; seconds, median (min-max)")
print(f"load average {os.getloadavg()[0]:.1f} at the end")
before = "| BASELINE's cpu " if baseline else ""
print(f"| tensors | bytes | wall | cpu {before}| index+plan | table | wall of the same bytes in <=100 tensors | wall ratio | cpu ratio | SIGTERM to exit (exit code) |")
print("|---|---|---|---|---|---|---|---|---|---|" + ("---|" if baseline else ""))
for m in models:
    n, count = m.split("-t")
    n = int(n[1:]); count = int(count)
    if n != count:
        continue
    base = f"n{n}-t{min(n, 100)}"
    w = [x["wall"] for x in runs[m]]
    bw = [x["wall"] for x in runs[base]]
    c = [x["cpu"] for x in runs[m]]
    bc = [x["cpu"] for x in runs[base]]
    stop = ", ".join(f"{t:.3f} ({c})" for t, c in stops.get(m, []))
    before = f"{cell([x['cpu'] for x in base_runs[m]])} | " if baseline else ""
    print(f"| {n:,} | {4 * n:,} | {cell(w)} | {cell(c)} | {before}"
          f"{cell([x['index'] for x in runs[m]])} | {cell([x['table'] for x in runs[m]])} | {cell(bw)} | "
          f"{statistics.median(w) / statistics.median(bw):.2f} | {statistics.median(c) / statistics.median(bc):.1f} | {stop} |")
PY
