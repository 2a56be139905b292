#!/usr/bin/env bash
# Does an early start overlap? (issue 15 part 3.) On a cold node (page cache dropped before every
# run, as root), a server that imports torch and then maps every tensor of the table, started by
# `tensorinit run` in each handoff: exec (after the load), signal after-load, signal early, signal
# early with the server's own files warm (python and torch in the page cache, the weights cold: it
# separates sharing the disk from sharing the CPU); with BASELINE="NAME=BIN ..." (or one BIN, named
# early-baseline) also signal early with other tensorinit binaries; and `load` alone, for staging's
# solo throughput. Interleaved rounds, order rotating; medians (min-max) of the time from
# tensorinit's start to the server's first Python line and to its ready line, staging's GB/s (the
# report's) against the solo load's, and what the server did while staging went on: its disk
# reads, the rate disk sharing alone allows, its CPU time, staging's CPU time (early_start.py).
# VARIANTS="NAME=STAGE-KEYS;..." adds signal early (or `load` alone, for a NAME starting with
# solo) with more `stage:` keys, e.g. VARIANTS="early-1mib=chunk_size: 1MiB;solo-1mib=chunk_size: 1MiB".
# 2 GiB, 5 rounds, 7 cases (the 5 and the two VARIANTS above): 8.5 minutes at load average 12.
# Usage: [TENSORINIT=BIN] [BASELINE="NAME=BIN ..."] [VARIANTS="NAME=KEYS;..."] [SIZE=2GiB] [ROUNDS=5] [BENCH_DIR=DIR] [PYTHON=python3]
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
out.write(f"imported {time.time():.6f}\n"); out.flush()
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

cases=("exec|$TI|exec|after-load|go|cold" "after-load|$TI|signal|after-load|go|cold"
       "early|$TI|signal|early|wait|cold" "early-warm|$TI|signal|early|wait|warm" "solo|$TI|none|after-load|-|cold")
for b in $BASELINE; do
  case $b in *=*) cases+=("${b%%=*}|${b#*=}|signal|early|wait|cold") ;; *) cases+=("early-baseline|$b|signal|early|wait|cold") ;; esac
done
IFS=';' read -ra variants <<<"${VARIANTS:-}"
for v in "${variants[@]}"; do
  case $v in
    '') ;;
    solo*) cases+=("${v%%=*}|$TI|none|after-load|-|cold|${v#*=}") ;;  # `load` alone with those keys
    *) cases+=("${v%%=*}|$TI|signal|early|wait|cold|${v#*=}") ;;
  esac
done
exec "$PYTHON" "$HERE/early_start.py" "$DIR" "$ROUNDS" "$PYTHON" "$SIZE" "${cases[@]}"
