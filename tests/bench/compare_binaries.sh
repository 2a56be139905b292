#!/usr/bin/env bash
# Staging throughput of two tensorinit binaries on one model, interleaved (A B B A ...), warm
# (page cache) and cold (dropped before each run, as root): medians with min and max of the
# report's stage seconds and the wall time. For "no regression" checks between commits:
#   bash tests/bench/compare_binaries.sh OLD_BINARY NEW_BINARY [ROUNDS] [SIZE]
set -euo pipefail
BENCH=compare_binaries
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
old=$1 new=$2 rounds=${3:-5} size=${4:-1GiB}
work=${BENCH_DIR:-/var/tmp/tensorinit-compare}
mkdir -p "$work"
[ -f "$work/model/model.safetensors.index.json" ] || "$new" synth --size "$size" --shards 2 "$work/model" >/dev/null
volume_manifest compare "$work/model" host "$work/m.yaml" >/dev/null
run() {  # run LABEL BINARY MODE
  [ "$3" = cold ] && { sync; echo 3 >/proc/sys/vm/drop_caches; }
  local t0 t1; t0=$(date +%s.%N)
  TENSORINIT_SHM_DIR= "$2" load -f "$work/m.yaml" --report "$work/r.json" 2>/dev/null
  t1=$(date +%s.%N)
  python3 -c "import json,sys; r=json.load(open('$work/r.json')); print('$1 $3', r['seconds']['stage'], $t1-$t0, r['bytes'])"
}
: >"$work/results"
for mode in warm cold; do
  run old "$old" warm >/dev/null  # fill the cache (and warm tmpfs pages) once
  for i in $(seq "$rounds"); do
    if [ $((i % 2)) = 1 ]; then run old "$old" $mode; run new "$new" $mode; else run new "$new" $mode; run old "$old" $mode; fi
  done >>"$work/results"
done
python3 - "$work/results" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    label, mode, stage, wall, size = line.split()
    rows.setdefault((mode, label), []).append((float(stage), float(wall), int(size)))
print(f"{'mode':5} {'binary':6} {'stage GB/s median (min-max)':30} {'wall s median (min-max)':26}")
for (mode, label), v in sorted(rows.items()):
    gbps = [s[2] / s[0] / 1e9 for s in v]
    walls = [s[1] for s in v]
    print(f"{mode:5} {label:6} {statistics.median(gbps):6.2f} ({min(gbps):.2f}-{max(gbps):.2f}){'':13} "
          f"{statistics.median(walls):6.2f} ({min(walls):.2f}-{max(walls):.2f})")
PY
