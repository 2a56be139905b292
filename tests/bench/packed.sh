#!/usr/bin/env bash
# Packed files against raw ones, in the same run (ratios, medians of interleaved rounds):
#   1. compression ratio of `tensorinit pack`, plain and --split-bytes, and what packing costs;
#   2. decoding speed per core: loads of the packed file from the page cache with 1 reader,
#      beside the raw file with 1 reader (the copy alone), and with the readers on every core;
#   3. a slow volume: the real disk throttled by the kernel (blkio/io.max read limit on the
#      block device, the loads run inside that cgroup with O_DIRECT), raw vs packed;
#   4. a fast source: both files warm in the page cache, raw vs packed.
# Needs root (cgroup throttle). Not a test: prints a table.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: tests/bench/packed.sh [--size SIZE] [--rounds N] [--dir DIR] [--rates "MB/s ..."]
                             [--model FILE.safetensors] [--tensorinit BIN]
Environment (flags win): BENCH_SIZE (1GiB synthetic bf16), BENCH_ROUNDS (3),
BENCH_DIR (/var/tmp/tensorinit-bench-packed: the real disk, not tmpfs),
BENCH_RATES ("100 400": slow-volume read limits in MB/s), BENCH_MODEL (a real safetensors
file instead of the synthetic one), TENSORINIT (build-bench/tensorinit).
EOF
}

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SIZE=${BENCH_SIZE:-1GiB}
ROUNDS=${BENCH_ROUNDS:-3}
DIR=${BENCH_DIR:-/var/tmp/tensorinit-bench-packed}
RATES=${BENCH_RATES:-100 400}
MODEL=${BENCH_MODEL:-}
TI=${TENSORINIT:-$ROOT/build-bench/tensorinit}
while (($#)); do
  case $1 in
    --size) SIZE=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --dir) DIR=$2; shift 2 ;;
    --rates) RATES=$2; shift 2 ;;
    --model) MODEL=$2; shift 2 ;;
    --tensorinit) TI=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "packed.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
done

BENCH=packed
source "$HERE/lib.sh"
[[ -x $TI ]] || die "$TI: no tensorinit binary (cmake -S . -B build-bench -G Ninja -DCMAKE_BUILD_TYPE=Release && ninja -C build-bench tensorinit)"
[[ $(id -u) == 0 ]] || die "needs root (the slow volume is a cgroup read throttle)"
command -v zstd >/dev/null || die "needs the zstd CLI (apt-get install zstd)"
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
case $(stat -f -c %T "$DIR") in tmpfs|ramfs) die "$DIR is in memory; pick a directory on a real disk" ;; esac

# --- The files: raw, packed, packed with byte planes.
if [[ -n $MODEL ]]; then
  RAW=$DIR/raw/model.safetensors
  mkdir -p "$DIR/raw" && cp "$MODEL" "$RAW"
else
  RAW=$DIR/raw/model.safetensors
  if [[ ! -f $DIR/raw/.complete-$SIZE ]]; then
    rm -rf "$DIR/raw" && say "synth $SIZE bf16"
    "$TI" synth --size "$SIZE" --seed 1 "$DIR/raw" 2>/dev/null && touch "$DIR/raw/.complete-$SIZE"
  fi
fi
mkdir -p "$DIR/packed" "$DIR/split"
t0=$(date +%s.%N)
"$TI" pack "$RAW" "$DIR/packed/model.safetensors.zst" 2>"$DIR/pack.log"
t1=$(date +%s.%N)
"$TI" pack --split-bytes "$RAW" "$DIR/split/model.safetensors.zst" 2>"$DIR/split.log"
t2=$(date +%s.%N)
zstd -q -d -c "$DIR/packed/model.safetensors.zst" | cmp - "$RAW" || die "zstd -d does not give back the input"
RAW_BYTES=$(stat -c %s "$RAW")
PACKED_BYTES=$(stat -c %s "$DIR/packed/model.safetensors.zst")
SPLIT_BYTES=$(stat -c %s "$DIR/split/model.safetensors.zst")
say "$(cat "$DIR/pack.log")"
say "$(cat "$DIR/split.log")"

# --- The slow volume: a read throttle on the block device under DIR, in a cgroup of our own.
majmin=$(findmnt -no MAJ:MIN -T "$DIR" | head -1 | tr -d ' ')
[[ -e /sys/dev/block/$majmin/partition ]] && majmin=$(cat "/sys/dev/block/$majmin/../dev")
[[ -e /sys/dev/block/$majmin ]] || die "cannot find the block device under $DIR ($majmin)"
if [[ -d /sys/fs/cgroup/blkio ]]; then
  CG=/sys/fs/cgroup/blkio/tensorinit-bench-packed
  mkdir -p "$CG"
  throttle() { echo "$majmin $1" >"$CG/blkio.throttle.read_bps_device"; }
elif grep -qw io /sys/fs/cgroup/cgroup.controllers 2>/dev/null; then
  CG=/sys/fs/cgroup/tensorinit-bench-packed
  mkdir -p "$CG"
  echo +io >/sys/fs/cgroup/cgroup.subtree_control 2>/dev/null || true
  throttle() { if [[ $1 == 0 ]]; then echo "$majmin rbps=max" >"$CG/io.max"; else echo "$majmin rbps=$1" >"$CG/io.max"; fi; }
else
  die "no blkio (cgroup v1) or io (cgroup v2) controller to throttle reads with"
fi
cleanup() { throttle 0 2>/dev/null || true; rmdir "$CG" 2>/dev/null || true; rm -f /dev/shm/tensorinit-packedbench*; }
trap cleanup EXIT

# load NAME PATH STAGE_YAML [in-cgroup]: one load; prints "stage_seconds compressed decoded cpu_seconds"
# (cpu: user + system of the whole process, GNU time: robust where other work shares the cores).
load() {
  local name=$1 path=$2 stage=$3 cg=${4:-}
  local m=$DIR/$name.yaml r=$DIR/$name.report.json
  printf 'version: 1\nmodel:\n  name: packedbench-%s\n  sources:\n    - {type: image, path: "%s"}\nstage: %s\nreport: %s\nhandoff: {mode: none}\n' \
    "$name" "$path" "$stage" "$r" >"$m"
  if [[ -n $cg ]]; then
    sh -c "echo \$\$ > '$CG/cgroup.procs' && exec /usr/bin/time -f '%U %S' -o '$DIR/$name.time' '$TI' load -f '$m'" 2>/dev/null
  else
    /usr/bin/time -f '%U %S' -o "$DIR/$name.time" "$TI" load -f "$m" 2>/dev/null
  fi
  python3 -c "import json; r=json.load(open('$r')); u, s = open('$DIR/$name.time').read().split()[-2:]; print(r['seconds']['stage'], r.get('compressed_bytes', 0), r.get('decoded_bytes', 0), float(u) + float(s))"
}
warm() { cat "$1" >/dev/null; }

declare -A T  # "case/variant" -> seconds, one per round
add() { T[$1]+="$2 "; }
files=(raw "$RAW" packed "$DIR/packed/model.safetensors.zst" split "$DIR/split/model.safetensors.zst")

for ((round = 1; round <= ROUNDS; round++)); do
  say "round $round/$ROUNDS"
  for ((i = 0; i < ${#files[@]}; i += 2)); do
    v=${files[i]} f=${files[i+1]}
    warm "$f"
    read -r s _ _ cpu < <(load "$v-1r" "$f" "{target: host, readers: 1, direct_io: off}"); add "decode1/$v" "$s"; add "cpu1/$v" "$cpu"
    read -r s _ _ _ < <(load "$v-all" "$f" "{target: host, direct_io: off}"); add "warm/$v" "$s"
    for rate in $RATES; do
      throttle $((rate * 1000000))
      read -r s c d _ < <(load "$v-slow$rate" "$f" "{target: host, direct_io: on}" cg); add "slow$rate/$v" "$s"
      throttle 0
      [[ $v != raw ]] && say "  $v at $rate MB/s: ${s}s, read $c compressed, decoded $d"
    done
  done
done

# zstd's own single-threaded decoder on the same file, for reference (to /dev/null, from cache).
warm "$DIR/packed/model.safetensors.zst"
z0=$(date +%s.%N); zstd -q -d -c "$DIR/packed/model.safetensors.zst" >/dev/null; z1=$(date +%s.%N)

gbps() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.2f", b / s / 1e9 }'; }
med() { echo "${T[$1]}" | tr ' ' '\n' | grep . | median; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

echo
echo "model: $RAW ($RAW_BYTES bytes); $(nproc) CPUs; medians of $ROUNDS rounds"
echo
echo "| | raw | packed | packed, byte planes |"
echo "|---|---|---|---|"
echo "| file bytes (ratio) | $RAW_BYTES | $PACKED_BYTES (x$(ratio "$RAW_BYTES" "$PACKED_BYTES")) | $SPLIT_BYTES (x$(ratio "$RAW_BYTES" "$SPLIT_BYTES")) |"
echo "| pack time, s | | $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}') | $(awk -v a="$t1" -v b="$t2" 'BEGIN{printf "%.1f", b-a}') |"
for c in decode1 warm $(for r in $RATES; do echo slow$r; done); do
  case $c in
    decode1) label="page cache, 1 reader (GB/s of decoded bytes per core)" ;;
    warm) label="page cache, readers auto" ;;
    slow*) label="slow volume ${c#slow} MB/s, O_DIRECT" ;;
  esac
  r=$(med "$c/raw") p=$(med "$c/packed") s=$(med "$c/split")
  echo "| $label: s (GB/s) | $r ($(gbps "$RAW_BYTES" "$r")) | $p ($(gbps "$RAW_BYTES" "$p")), x$(ratio "$r" "$p") vs raw | $s ($(gbps "$RAW_BYTES" "$s")), x$(ratio "$r" "$s") vs raw |"
done
echo "| zstd -d (CLI, 1 thread, to /dev/null), s (GB/s) | | $(awk -v a="$z0" -v b="$z1" 'BEGIN{printf "%.2f", b-a}') ($(gbps "$RAW_BYTES" "$(awk -v a="$z0" -v b="$z1" 'BEGIN{print b-a}')")) | |"
cr=$(med cpu1/raw) cp=$(med cpu1/packed) cs=$(med cpu1/split)
echo "| page cache, 1 reader: CPU seconds (GB per CPU-second) | $cr ($(gbps "$RAW_BYTES" "$cr")) | $cp ($(gbps "$RAW_BYTES" "$cp")) | $cs ($(gbps "$RAW_BYTES" "$cs")) |"
echo "| decoding alone: (CPU packed - CPU raw), GB/s per core | | $(gbps "$RAW_BYTES" "$(awk -v a="$cp" -v b="$cr" 'BEGIN{print a-b}')") | $(gbps "$RAW_BYTES" "$(awk -v a="$cs" -v b="$cr" 'BEGIN{print a-b}')") |"
echo
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) (wall-clock rows suffer when it exceeds $(nproc))"
