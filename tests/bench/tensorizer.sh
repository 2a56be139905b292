#!/usr/bin/env bash
# Tensorizer checksums and decryption against plain loads, in the same run (ratios of medians of
# interleaved rounds; each load's stage seconds from its report):
#   1. `verify: checksums` vs `verify: none` on a synthetic tensorizer file (readers on every core);
#   2. decryption: the same tensors encrypted by the real tensorizer (where python can import it),
#      loaded with model.key vs the plain file, on every core and pinned to one core (taskset),
#      giving decryption GB/s per core = bytes / (encrypted seconds - plain seconds) on one core.
# Source files sit in the page cache (the disk is not what is measured); the arena is /dev/shm.
# Not a test: prints a table.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: tests/bench/tensorizer.sh [--size SIZE] [--rounds N] [--dir DIR] [--tensorinit BIN]
Environment (flags win): BENCH_SIZE (1536MiB), BENCH_ROUNDS (5), BENCH_DIR
(/var/tmp/tensorinit-bench-tensorizer), TENSORINIT (build-bench/tensorinit), TENSORIZER_PYTHON
(a python with tensorizer and torch; default: /var/tmp/tensorinit-bench/venv/bin/python).
EOF
}

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SIZE=${BENCH_SIZE:-1536MiB}
ROUNDS=${BENCH_ROUNDS:-5}
DIR=${BENCH_DIR:-/var/tmp/tensorinit-bench-tensorizer}
TI=${TENSORINIT:-$ROOT/build-bench/tensorinit}
PY=${TENSORIZER_PYTHON:-/var/tmp/tensorinit-bench/venv/bin/python}
while (($#)); do
  case $1 in
    --size) SIZE=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --dir) DIR=$2; shift 2 ;;
    --tensorinit) TI=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "tensorizer.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
done
KEY=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
mkdir -p "$DIR"

[ -f "$DIR/plain/model.tensors" ] || "$TI" synth --size "$SIZE" --seed 1 --format tensorizer "$DIR/plain" 2>/dev/null
encrypted=""
if [ -f "$DIR/encrypted/model.tensors" ]; then
  encrypted=$DIR/encrypted
  KEY=$(cat "$DIR/encrypted/key")
elif "$PY" -c "import tensorizer, torch" 2>/dev/null; then
  # The same tensors, encrypted by the real tensorizer (read with our own reader through torch).
  mkdir -p "$DIR/encrypted" && echo "$KEY" >"$DIR/encrypted/key"
  "$PY" - "$DIR/plain/model.tensors" "$DIR/encrypted/model.tensors" "$KEY" <<'PY'
import sys
from tensorizer import EncryptionParams, TensorDeserializer, TensorSerializer
d = TensorDeserializer(sys.argv[1], device="cpu")
s = TensorSerializer(sys.argv[2], encryption=EncryptionParams(bytes.fromhex(sys.argv[3])))
s.write_state_dict({k: v for k, v in d.items()})
s.close()
PY
  encrypted=$DIR/encrypted
fi
export TZ_BENCH_KEY=$KEY
cat "$DIR"/*/model.tensors >/dev/null  # into the page cache

# stage_seconds NAME DIR VERIFY [TASKSET...]: one load, prints its stage seconds and the whole
# process's CPU seconds (user + system).
stage_seconds() {
  local name=$1 dir=$2 verify=$3; shift 3
  local m=$DIR/$name.yaml
  cat >"$m" <<EOF
version: 1
model:
  name: $name
  sources: [{type: image, path: $dir}]
  verify: $verify
  key: \${TZ_BENCH_KEY}
stage: {target: host}
handoff: {mode: none}
report: $DIR/$name.json
EOF
  "$@" /usr/bin/time -f '%U %S' -o "$DIR/$name.cpu" "$TI" load -f "$m" 2>/dev/null >/dev/null
  python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['seconds']['stage'], sum(map(float, open(sys.argv[2]).read().split())))" \
    "$DIR/$name.json" "$DIR/$name.cpu"
}

median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

declare -A times cpu
cases=(none:plain:none checksums:plain:checksums)
[ -n "$encrypted" ] && cases+=(encrypted:encrypted:none encrypted_checksums:encrypted:checksums \
                               one_plain:plain:none:1 one_encrypted:encrypted:none:1)
for ((r = 0; r < ROUNDS; r++)); do
  for c in "${cases[@]}"; do
    IFS=: read -r name sub verify one <<<"$c"
    if [ -n "${one:-}" ]; then read -r t c < <(stage_seconds "$name" "$DIR/$sub" "$verify" taskset -c 0)
    else read -r t c < <(stage_seconds "$name" "$DIR/$sub" "$verify"); fi
    times[$name]+="$t "
    cpu[$name]+="$c "
  done
done
bytes=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['bytes'])" "$DIR/none.json")
printf '%s tensor bytes, %s rounds, %s cores, medians of stage seconds\n' "$bytes" "$ROUNDS" "$(nproc)"
printf '%-22s %10s %10s %8s %10s\n' case seconds GB/s "vs none" "cpu s"
base=$(tr ' ' '\n' <<<"${times[none]}" | grep . | median)
for c in "${cases[@]}"; do
  name=${c%%:*}
  s=$(tr ' ' '\n' <<<"${times[$name]}" | grep . | median)
  u=$(tr ' ' '\n' <<<"${cpu[$name]}" | grep . | median)
  awk -v n="$name" -v s="$s" -v u="$u" -v b="$bytes" -v base="$base" \
    'BEGIN {printf "%-22s %10.3f %10.2f %8.2f %10.2f\n", n, s, b / s / 1e9, base / s, u}'
done
if [ -n "$encrypted" ]; then
  p=$(tr ' ' '\n' <<<"${times[one_plain]}" | grep . | median)
  e=$(tr ' ' '\n' <<<"${times[one_encrypted]}" | grep . | median)
  awk -v p="$p" -v e="$e" -v b="$bytes" 'BEGIN {printf "decryption on one core: %.2f GB/s (bytes / (encrypted - plain seconds))\n", b / (e - p) / 1e9}'
fi
