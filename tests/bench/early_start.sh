#!/usr/bin/env bash
# Does an early start overlap? (issue 15 part 3.) On a cold node (page cache dropped before every
# run, as root), a server that imports torch and then maps every tensor of the table, started by
# `tensorinit run` in each handoff: exec (after the load), signal after-load, signal early; with
# BASELINE=BIN also signal early with another tensorinit (e.g. one without the readers' idle I/O
# class); and `load` alone, for staging's solo throughput. Interleaved rounds, order rotating;
# medians (min-max) of the time from tensorinit's start to the server's first Python line and to
# its ready line, and staging's GB/s (the report's) against the solo load's.
# Usage: [TENSORINIT=BIN] [BASELINE=BIN] [SIZE=2GiB] [ROUNDS=5] [BENCH_DIR=DIR] [PYTHON=python3]
#        tests/bench/early_start.sh        (root: drop_caches; torch for PYTHON: Debian python3-torch)
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
TI=${TENSORINIT:-$ROOT/build/tensorinit}
BASELINE=${BASELINE:-}
SIZE=${SIZE:-2GiB}
ROUNDS=${ROUNDS:-5}
PYTHON=${PYTHON:-python3}
DIR=${BENCH_DIR:-/var/tmp/tensorinit-bench}/early-start
[ "$(id -u)" = 0 ] || { echo "early_start.sh: needs root (drop_caches)" >&2; exit 1; }
if ! "$PYTHON" -c "import torch" 2>/dev/null; then
  [ "$PYTHON" = python3 ] && command -v apt-get >/dev/null &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-torch >/dev/null
  "$PYTHON" -c "import torch" || { echo "early_start.sh: $PYTHON cannot import torch" >&2; exit 1; }
fi
case $(stat -f -c %T "$(dirname "$DIR")" 2>/dev/null || echo none) in
  tmpfs|ramfs) echo "early_start.sh: $DIR is in memory; cold reads need the disk" >&2; exit 1 ;;
esac
mkdir -p "$DIR"
model=$DIR/model-$SIZE
[ -f "$model/.complete" ] || { rm -rf "$model"; "$TI" synth --size "$SIZE" --shards 2 "$model" 2>/dev/null; touch "$model/.complete"; }

cat >"$DIR/server.py" <<'PY'
import time, os, sys
out = open(sys.argv[1], "a")
out.write(f"first {time.time():.6f}\n"); out.flush()
import signal
wait = sys.argv[2] == "wait"
if wait:
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
import json, mmap, torch
if wait:
    signal.sigwait({signal.SIGUSR1})
table = json.load(open(os.environ["TENSORINIT_TABLE"]))
arena = table["arenas"][0]
f = open(arena["path"], "rb")
m = mmap.mmap(f.fileno(), arena["bytes"], prot=mmap.PROT_READ)
types = {"BF16": torch.bfloat16, "F16": torch.float16, "F32": torch.float32}
total = 0.0
import warnings
warnings.simplefilter("ignore")  # frombuffer on a read-only mapping warns
for t in table["tensors"]:
    n = t["bytes"] // torch.tensor([], dtype=types[t["dtype"]]).element_size()
    x = torch.frombuffer(m, dtype=types[t["dtype"]], count=n, offset=t["offset"])
    total += float(x[0])
out.write(f"ready {time.time():.6f}\n"); out.flush()
PY

cases=("exec|$TI|exec|after-load|go" "after-load|$TI|signal|after-load|go" "early|$TI|signal|early|wait" "solo|$TI|none|after-load|-")
[ -n "$BASELINE" ] && cases+=("early-baseline|$BASELINE|signal|early|wait")

SIZE=$SIZE exec "$PYTHON" - "$DIR" "$ROUNDS" "$PYTHON" "${cases[@]}" <<'PY'
import json, os, statistics, subprocess, sys, time
d, rounds, python, cases = sys.argv[1], int(sys.argv[2]), sys.argv[3], [c.split("|") for c in sys.argv[4:]]
results = {c[0]: [] for c in cases}

for name, ti, mode, start, wait in cases:
    with open(f"{d}/{name}.yaml", "w") as f:
        f.write(f"version: 1\nmodel:\n  name: early-{name}\n  sources: [{{type: image, path: \"{d}/model-{os.environ.get('SIZE', '2GiB')}\"}}]\n"
                f"stage: {{target: host}}\nhandoff: {{mode: {mode}, start: {start}, signal: SIGUSR1}}\n"
                f"report: {d}/{name}.report.json\n")

def once(name, ti, mode, start, wait):
    subprocess.run(["sync"])
    open("/proc/sys/vm/drop_caches", "w").write("3\n")
    marks = f"{d}/{name}.marks"
    if os.path.exists(marks):
        os.unlink(marks)
    cmd = [ti, "run" if mode != "none" else "load", "-f", f"{d}/{name}.yaml"]
    if mode != "none":
        cmd += ["--", python, f"{d}/server.py", marks, wait]
    t0 = time.time()
    subprocess.run(cmd, check=True, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    end = time.time() - t0
    report = json.load(open(f"{d}/{name}.report.json"))
    row = {"gbps": report["throughput_gbps"], "end": end}
    if mode != "none":
        for line in open(marks):
            what, at = line.split()
            row[what] = float(at) - t0
    return row

for r in range(rounds):
    for c in cases[r % len(cases):] + cases[:r % len(cases)]:
        results[c[0]].append(once(*c))

def cell(rows, key):
    v = [x[key] for x in rows if key in x]
    return f"{statistics.median(v):.2f} ({min(v):.2f}-{max(v):.2f})" if v else "-"

solo = statistics.median(x["gbps"] for x in results["solo"])
print(f"cold node (page cache dropped before each run), {rounds} interleaved rounds; seconds from tensorinit's start; "
      f"load average {os.getloadavg()[0]:.1f}")
print("| handoff | server's first line | server ready | staging GB/s | vs solo load |")
print("|---|---|---|---|---|")
for name, *_ in cases:
    rows = results[name]
    g = statistics.median(x["gbps"] for x in rows)
    print(f"| {name} | {cell(rows, 'first')} | {cell(rows, 'ready')} | {cell(rows, 'gbps')} | {g / solo:.2f} |")
PY
