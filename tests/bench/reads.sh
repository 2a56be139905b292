#!/usr/bin/env bash
# The read path alone (issue 15 parts 1-2): tensorinit host / pagecache / discard against the best
# plain reads (dd buffered, a small fio O_DIRECT sweep, cp into /dev/shm) and the PyPI peers, on
# one file, interleaved (the order rotates each round), page cache dropped before every cold run.
# Prints median GB/s with min and max, each row's ratio to the best plain read, and the read
# controller's choices per tensorinit run, and each row's CPU seconds per GB (user + system of the
# whole process: tensorinit's includes indexing and removing its arena, cp's and the probes' freeing
# their copy; the peers' is not measured, their interpreters' imports would dominate it).
# `--throttle MBPS` runs every method inside a cgroup whose reads of the disk are throttled (the
# "slow volume" behaviour). Needs root. Not a test.
#
#   tests/bench/reads.sh [--size 2GiB] [--rounds 3] [--dir /var/tmp/tensorinit-reads]
#                        [--tensorinit BIN] [--baseline BIN] [--throttle MBPS] [--only "REGEX"]
#                        [--probes 1] [--sweep 1] [--sweep-bytes 256MiB]
# `--baseline BIN` (or BASELINE=BIN): the same host (cold, warm), pagecache and discard loads with
# another build in the same rounds. `--fixed "SETTINGS"` (repeatable): a cold host row with those
# stage settings fixed, e.g. `--fixed "direct_io: off, readers: 1"` (splice 16M x1, the copy
# probe's way), `--fixed "direct_io: on"` (O_DIRECT candidates only) or `--fixed "direct_io: off,
# readers: 8"` (the shared-cursor splice 256K x8 against whole-chunk splices 16M x8). In the
# controller's choices, `s256Kx8c?:0.91` is a probe (?) of splice 256 KiB x 8 on one shared
# cursor (c) at 0.91 GB/s; `u` after it: the writes into the arena did not take turns (unlocked,
# ReadSetting::serialised false).
# Each run's line also gives its exploit epochs' rate beside the stage's (with the arena's set-up):
# where they agree, the probes, the ramp and the tail cost nothing measurable (docs/notes/copy21.md).
# `--sweep 1` (issue 15 part 2's yardstick): first the plain copies of the file into a new tmpfs
# file (arena_reads.c: pread+pwrite, splice, sendfile, copy_file_range; buffered and O_DIRECT;
# SWEEP_THREADS and SWEEP_REQUESTS searched per mode, copy_sweep.sh) run once each over the file's
# first `--sweep-bytes`, cold then warm, and reads into anonymous memory (what safetensors'
# load_file lands in) cold; the best 3 cold
# copies, the best 2 warm and the best anonymous read then join the interleaved rounds over the
# whole file. The table gains each row's ratio to the best plain copy into tmpfs (cp, the probes,
# the sweep's rows) of its temperature.
# `--probes 1` adds the arena probes (arena_reads.c): O_DIRECT into a buffer + pwrite, splice,
# and O_DIRECT straight into the arena's shared mapping, its pages faulted by the reads or
# allocated ahead on a helper thread (fallocate, MADV_POPULATE_WRITE), 1-4 MiB x 4-16.
# Peers: BENCH_PY names a python with torch and safetensors (PYTHONPATH may add
# runai_model_streamer); unset or failing: the peer rows are skipped.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SIZE=2GiB ROUNDS=3 DIR=/var/tmp/tensorinit-reads TI=$ROOT/build/tensorinit BASE=${BASELINE:-} THROTTLE=0 ONLY=. PROBES=0
SWEEP=0 SWEEP_BYTES=256MiB FIXED=()
SWEEP_THREADS=${SWEEP_THREADS:-1 2 4 8} SWEEP_REQUESTS=${SWEEP_REQUESTS:-256K 1M 4M 16M}
SWEEP_COLD=${SWEEP_COLD:-direct-pwrite direct-pwrite-serial pwrite splice direct-splice sendfile copy-range}
SWEEP_WARM=${SWEEP_WARM:-pwrite pwrite-serial splice sendfile} SWEEP_ANON=${SWEEP_ANON:-direct-anon anon}
while (($#)); do
  case $1 in
    --size) SIZE=$2 ;; --rounds) ROUNDS=$2 ;; --dir) DIR=$2 ;; --tensorinit) TI=$2 ;;
    --baseline) BASE=$2 ;; --throttle) THROTTLE=$2 ;; --only) ONLY=$2 ;; --probes) PROBES=$2 ;;
    --sweep) SWEEP=$2 ;; --sweep-bytes) SWEEP_BYTES=$2 ;; --fixed) FIXED+=("$2") ;;
    *) echo "reads.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift 2
done
[[ $(id -u) == 0 ]] || { echo "reads.sh: needs root (drop_caches, cgroups)" >&2; exit 1; }
BENCH=reads
source "$HERE/lib.sh"
# fio is the best plain read's yardstick: a fresh Debian machine lacks it.
command -v fio >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends fio >/dev/null ||
  { echo "reads.sh: fio is missing and could not be installed (apt-get install fio)" >&2; exit 1; }
mkdir -p "$DIR"
MODEL=$DIR/model-$SIZE
[[ -f $MODEL/.complete ]] || { rm -rf "$MODEL"; "$TI" synth --size "$SIZE" "$MODEL" >&2; sync; touch "$MODEL/.complete"; }
FILE=$(ls "$MODEL"/*.safetensors | head -1)
BYTES=$(stat -c %s "$FILE")
OUT=$DIR/results-$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUT"
say "$(nproc) cores, $(uname -r), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); file $BYTES bytes; load $(cut -d' ' -f1-3 /proc/loadavg)"

# The slow volume: a read throttle on the disk under DIR, in a cgroup every method runs in.
CG=""
majmin=$(lsblk -no MAJ:MIN "$(findmnt -no SOURCE --target "$DIR" | sed 's/\[.*//')" 2>/dev/null | head -1 | xargs)
if ((THROTTLE > 0)); then
  if [[ -d /sys/fs/cgroup/blkio ]]; then
    CG=/sys/fs/cgroup/blkio/tensorinit-reads; mkdir -p "$CG"
    echo "$majmin $((THROTTLE * 1000000))" >"$CG/blkio.throttle.read_bps_device"
  else
    CG=/sys/fs/cgroup/tensorinit-reads; mkdir -p "$CG"; echo +io >/sys/fs/cgroup/cgroup.subtree_control 2>/dev/null || true
    echo "$majmin rbps=$((THROTTLE * 1000000))" >"$CG/io.max"
  fi
  trap 'rmdir "$CG" 2>/dev/null || true' EXIT
  say "reads of $majmin throttled to $THROTTLE MB/s in $CG"
fi
inside() {  # command...: runs it (in the throttle's cgroup if any); its user and system CPU seconds to $OUT/last.cpu
  local TIMEFORMAT='%3U %3S'
  { time {
    if [[ -n $CG ]]; then sh -c "echo \$\$ >'$CG/cgroup.procs' && exec \"\$@\"" sh "$@"; else "$@"; fi
  } 2>&3; } 3>&2 2>"$OUT/last.cpu"
}

manifest() {  # target[,~stage~settings] (~ for spaces) -> path
  volume_manifest readsbench "$MODEL" "${1//\~/ }" "$OUT/m-$(tr -c 'a-z0-9\n' _ <<<"$1").yaml"
}
drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }
warm() { cat "$FILE" >/dev/null; }
timed() {  # command... -> "BYTES SECONDS"
  local s; s=$(now); inside "$@" >/dev/null 2>>"$OUT/stderr.txt" || return 1
  awk -v a="$s" -v b="$(now)" -v n="$BYTES" 'BEGIN { printf "%d %.6f\n", n, b - a }'
}
ti() {  # bin target tag -> "BYTES STAGE_SECONDS" (the report's stage phase; wall time in the log)
  local rep=$OUT/report-$3-$ROUND.json
  inside "$1" load -f "$(manifest "$2")" --report "$rep" 2>>"$OUT/stderr.txt" || return 1
  python3 - "$rep" "$3" >>"$OUT/choices.txt" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1])); c = r.get("reads") or {}
# s256Kx8cu?: splice, 256 KiB requests, 8 readers, on one shared cursor (c), unlocked writes (u), a probe (?)
size = lambda b: f"{b >> 20}M" if b >= 1 << 20 else f"{b >> 10}K"
name = lambda s: f"{s['mode'][0]}{size(s['request'])}x{s['readers']}{'c' if s.get('shared') else ''}{'' if s.get('serialised', True) else 'u'}"
ph = " ".join(f"{name(p)}{'?' if p['probe'] else ''}:{p['gbps']:.2f}" for p in c.get("phases", []))
carried = f"{c.get('mode')} {size(c.get('request', 0))} x{c.get('readers')}{' shared' if c.get('shared') else ''}{'' if c.get('serialised', True) else ' unlocked'}"
# Where the time went (docs/notes/copy21.md): the exploit epochs' rate (their bytes over their
# seconds) against the stage's; probe epochs overlap their neighbours, so their own rates read low.
ps = c.get("phases", []); xb = sum(p["bytes"] for p in ps if not p["probe"]); xs = sum(p["seconds"] for p in ps if not p["probe"])
acct = f"; exploits {xb / xs / 1e9:.2f} GB/s over {xb / r['bytes']:.0%} of the bytes, arena + stage {r['bytes'] / r['seconds']['stage'] / 1e9:.2f}" if xs > 0 else ""
print(f"{sys.argv[2]}: {r['throughput_gbps']:.2f} GB/s, carried by {carried}{acct}; phases {ph}")
EOF
  python3 -c "import json,sys; r=json.load(open('$rep')); print(r['bytes'], r['seconds']['stage'])"
}
peer() {  # name -> "BYTES SECONDS"
  [[ -n ${BENCH_PY:-} ]] || return 1
  inside "$BENCH_PY" "$HERE/peers.py" "load-$1" "$MODEL" 2>>"$OUT/stderr.txt" |
    python3 -c "import json,sys; r=json.loads(sys.stdin.read().strip().splitlines()[-1]); print(r['bytes'], r['seconds'])"
  echo "- -" >"$OUT/last.cpu"  # torch's import, not the load
}
fio_read() {  # bs depth
  inside fio --name=r --filename="$FILE" --readonly --rw=read --direct=1 --bs="$1" --iodepth="$2" --ioengine=io_uring \
    --output-format=json 2>>"$OUT/stderr.txt" |
    python3 -c "import json,sys; j=json.load(sys.stdin)['jobs'][0]['read']; print(j['io_bytes'], j['runtime']/1000)"
}
probe() {  # mode request threads [ahead] [shift] [limit] -> "BYTES SECONDS"; CPU seconds per GB to cpu.tsv
  inside "$PROBE" "$1" "$FILE" /dev/shm "$2" "$3" "${4:-67108864}" "${5:-0}" "${6:-0}" 2>>"$OUT/stderr.txt" |
    python3 -c "import json,sys; r=json.loads(sys.stdin.read()); print(r['bytes'], r['seconds'])
print(sys.argv[1], r['cpu'] * 1e9 / r['bytes'], sep='\t', file=open(sys.argv[2], 'a'))" "$*" "$OUT/cpu.tsv"
}
cp_shm() {  # wall: the copy; CPU: the copy and the removal (as tensorinit and the probes free theirs)
  local s t; s=$(now)
  t=$(inside sh -c 'cp "$1" "$2" && date +%s.%N && rm -f "$2"' sh "$FILE" /dev/shm/readsbench.cp 2>>"$OUT/stderr.txt") ||
    { rm -f /dev/shm/readsbench.cp; return 1; }
  awk -v a="$s" -v b="$t" -v n="$BYTES" 'BEGIN { printf "%d %.6f\n", n, b - a }'
}

# name | before (drop|warm) | command
METHODS=(
  "dd bs=4M (buffered)|drop|timed dd if=$FILE of=/dev/null bs=4M"
  "fio O_DIRECT 16M x16|drop|fio_read 16M 16"
  "fio O_DIRECT 4M x8|drop|fio_read 4M 8"
  "fio O_DIRECT 1M x32|drop|fio_read 1M 32"
  "cp into /dev/shm (cold)|drop|cp_shm"
  "tensorinit host (cold)|drop|ti $TI host host-cold"
  "tensorinit pagecache (cold)|drop|ti $TI pagecache pagecache-cold"
  "tensorinit discard (cold)|drop|ti $TI discard discard-cold"
  "peer safetensors (cold)|drop|peer safetensors"
  "peer runai (cold)|drop|peer runai"
  "cp into /dev/shm (warm)|warm|cp_shm"
  "tensorinit host (warm)|warm|ti $TI host host-warm"
)
PROBE=$DIR/arena_reads
((PROBES || SWEEP)) && cc -O2 -pthread -o "$PROBE" "$HERE/arena_reads.c"
M=$((1 << 20))
if ((PROBES)); then
  METHODS+=(
    "probe O_DIRECT buffer+pwrite 1M x8|drop|probe buf-pwrite $M 8"
    "probe O_DIRECT buffer+pwrite 4M x8|drop|probe buf-pwrite $((4 * M)) 8"
    "probe splice 16M x2|drop|probe splice $((16 * M)) 2"
    "probe O_DIRECT->map 1M x8|drop|probe dio-map $M 8"
    "probe O_DIRECT->map 1M x16|drop|probe dio-map $M 16"
    "probe O_DIRECT->map 4M x4|drop|probe dio-map $((4 * M)) 4"
    "probe O_DIRECT->map 4M x8|drop|probe dio-map $((4 * M)) 8"
    "probe O_DIRECT->map+falloc 1M x8|drop|probe dio-falloc $M 8"
    "probe O_DIRECT->map+falloc 4M x8|drop|probe dio-falloc $((4 * M)) 8"
    "probe O_DIRECT->map+populate 1M x8|drop|probe dio-populate $M 8"
    "probe O_DIRECT->map+populate 4M x8|drop|probe dio-populate $((4 * M)) 8"
    "probe O_DIRECT->map 4M x8 shift 256|drop|probe dio-map $((4 * M)) 8 0 256"
  )
fi
((SWEEP)) && source "$HERE/copy_sweep.sh"  # sweep_copies: the sweep; its best rows join METHODS
for f in "${FIXED[@]}"; do  # the host load with stage settings fixed, e.g. the copy probe's
  METHODS+=("tensorinit host (cold, $f)|drop|ti $TI host,~${f// /\~} host-cold-$(tr -c 'a-z0-9' _ <<<"$f")")
done
[[ -n $BASE ]] && METHODS+=("baseline host (cold)|drop|ti $BASE host base-cold" "baseline host (warm)|warm|ti $BASE host base-warm"
  "baseline pagecache (cold)|drop|ti $BASE pagecache base-pagecache-cold" "baseline discard (cold)|drop|ti $BASE discard base-discard-cold")
mapfile -t METHODS < <(printf '%s\n' "${METHODS[@]}" | grep -E -- "^[^|]*($ONLY)")
printf '# method\tround\tbefore\tbytes\tseconds\tcpu\n' >"$OUT/results.tsv"
for ((ROUND = 1; ROUND <= ROUNDS; ROUND++)); do
  n=${#METHODS[@]}
  for ((k = 0; k < n; k++)); do  # rotate the order each round
    IFS='|' read -r name before cmd <<<"${METHODS[$(((k + ROUND - 1) % n))]}"
    $before
    rm -f "$OUT/last.cpu"
    if r=$($cmd); then
      printf '%s\t%d\t%s\t%s\t%s\t%s\n' "$name" "$ROUND" "$before" ${r} "$(awk '$1 != "-" { print $1 + $2 }' "$OUT/last.cpu" 2>/dev/null)" >>"$OUT/results.tsv"
    else say "SKIP $name (round $ROUND)"; fi
  done
  say "round $ROUND done"
done
python3 - "$OUT/results.tsv" <<'EOF' | tee "$OUT/table.txt"
import statistics, sys
rows, cpu, temp = {}, {}, {}
for line in open(sys.argv[1]):
    if line.startswith("#"): continue
    m, _, before, b, s, c = line.rstrip("\n").split("\t")
    rows.setdefault(m, []).append(int(b) / float(s) / 1e9)
    if c: cpu.setdefault(m, []).append(float(c) / (int(b) / 1e9))
    temp[m] = before
med = {m: statistics.median(v) for m, v in rows.items()}
plain = [m for m in med if m.startswith(("dd", "fio"))]
best = max(plain, key=med.get) if plain else None
# The best plain copy into tmpfs of each temperature: cp, the probes, the sweep's rows.
copies = {}
for m in med:
    if m.startswith(("cp into", "plain copy", "probe")) and (temp[m] not in copies or med[m] > med[copies[temp[m]]]):
        copies[temp[m]] = m
print(f"{'method':<40} {'GB/s med':>8} {'min':>6} {'max':>6} {'n':>2} {'CPU s/GB':>8} {'/best read':>10} {'/best copy':>10}")
for m, v in rows.items():
    r = f"{med[m] / med[best]:10.2f}" if best else f"{'':10}"
    c = f"{statistics.median(cpu[m]):8.2f}" if m in cpu else f"{'-':>8}"
    k = f"{med[m] / med[copies[temp[m]]]:10.2f}" if temp[m] in copies else ""
    print(f"{m:<40} {med[m]:8.2f} {min(v):6.2f} {max(v):6.2f} {len(v):2d} {c} {r} {k}")
if best: print(f"best plain read: {best} ({med[best]:.2f} GB/s)")
for t, m in sorted(copies.items()):
    print(f"best plain copy into tmpfs ({'cold' if t == 'drop' else t}): {m} ({med[m]:.2f} GB/s)")
    for ti in (x for x in med if x.startswith(("tensorinit host", "baseline host")) and temp[x] == t):
        print(f"  {ti} / best plain copy: {med[ti] / med[m]:.2f}")
EOF
[[ -f $OUT/choices.txt ]] && { echo "controller's choices (per run):"; cat "$OUT/choices.txt"; }
[[ -f $OUT/cpu.tsv ]] && python3 - "$OUT/cpu.tsv" <<'EOF'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    m, c = line.rstrip("\n").split("\t")
    rows.setdefault(m, []).append(float(c))
print("probes' CPU seconds per GB (user + system, all threads): median (min-max)")
for m, v in rows.items(): print(f"  {m:<40} {statistics.median(v):.2f} ({min(v):.2f}-{max(v):.2f})")
EOF
say "results in $OUT; load $(cut -d' ' -f1-3 /proc/loadavg); $SECONDS s in all"
