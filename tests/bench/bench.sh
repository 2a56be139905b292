#!/usr/bin/env bash
# tensorinit benchmark: cold and warm loads of one synthetic model, side by side with the
# buffered single read (dd), the device limit (fio O_DIRECT) and the PyPI peers, interleaved
# across rounds (the shared virtual disk swings 2x between minutes), medians in a table.
# See README.md beside this file for what each row measures.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: tests/bench/bench.sh [--size SIZE] [--shards N] [--rounds N] [--dir DIR]
                            [--tensorinit BIN] [--peers "safetensors tensorizer runai"|none]
Environment (flags win): BENCH_SIZE (4GiB), BENCH_SHARDS (2), BENCH_ROUNDS (3),
BENCH_DIR (/var/tmp/tensorinit-bench: must be the real disk, not tmpfs), TENSORINIT
(build-bench/tensorinit), BENCH_PEERS (all three).
EOF
}

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SIZE=${BENCH_SIZE:-4GiB}
SHARDS=${BENCH_SHARDS:-2}
ROUNDS=${BENCH_ROUNDS:-3}
DIR=${BENCH_DIR:-/var/tmp/tensorinit-bench}
TI=${TENSORINIT:-$ROOT/build-bench/tensorinit}
PEERS=${BENCH_PEERS:-safetensors tensorizer runai}

while (($#)); do
  case $1 in
    --size) SIZE=$2; shift 2 ;;
    --shards) SHARDS=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --dir) DIR=$2; shift 2 ;;
    --tensorinit) TI=$2; shift 2 ;;
    --peers) PEERS=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bench.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
done
[[ $PEERS == none ]] && PEERS=""

BENCH=bench
source "$HERE/lib.sh"

# ---------------------------------------------------------------------------------------------
# Set-up: checks, the model, the tools.

[[ -x $TI ]] || die "$TI: no tensorinit binary (build it: cmake -S . -B build-bench -G Ninja -DCMAKE_BUILD_TYPE=Release && ninja -C build-bench tensorinit)"
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
case $(stat -f -c %T "$DIR") in
  tmpfs|ramfs) die "$DIR is on $(stat -f -c %T "$DIR"): cold reads would come from memory; pick a directory on the real disk with --dir" ;;
esac
SYS_PY=/usr/bin/python3
[[ -x $SYS_PY ]] || SYS_PY=$(command -v python3)

MODEL=$DIR/model-$SIZE-x$SHARDS
if [[ ! -f $MODEL/.complete ]]; then
  say "writing the model: $SIZE in $SHARDS shard(s) into $MODEL"
  rm -rf "$MODEL"
  shard_args=()
  ((SHARDS > 1)) && shard_args=(--shards "$SHARDS")
  start=$(now)
  "$TI" synth --size "$SIZE" "${shard_args[@]}" "$MODEL" >&2
  sync
  touch "$MODEL/.complete"
  say "model written in $(since "$start") s"
fi
mapfile -t FILES < <(ls "$MODEL"/*.safetensors)
MODEL_BYTES=$(stat -c %s "${FILES[@]}" | awk '{ s += $1 } END { printf "%.0f", s }')
say "model: ${#FILES[@]} file(s), $MODEL_BYTES bytes"

shm_free=$(($(stat -f -c '%a*%S' /dev/shm)))
((shm_free > MODEL_BYTES)) || die "/dev/shm has $shm_free bytes free, the host arena needs $MODEL_BYTES"

if ! command -v fio >/dev/null; then
  if ((EUID == 0)); then say "installing fio (Debian)"; apt-get install -y -q fio >&2 || true; fi
fi
FIO_ENGINE=""
if command -v fio >/dev/null; then
  for engine in io_uring libaio; do
    if fio --name=probe --readonly --rw=read --bs=1M --size=16M --direct=1 --ioengine=$engine \
         --filename="${FILES[0]}" --output=/dev/null >/dev/null 2>&1; then FIO_ENGINE=$engine; break; fi
  done
  [[ -n $FIO_ENGINE ]] || say "SKIP fio: neither io_uring nor libaio works here"
else
  say "SKIP fio: not installed (apt-get install -y fio)"
fi

MEMCPY=$DIR/memcpy
if [[ ! -x $MEMCPY || $HERE/memcpy.c -nt $MEMCPY ]]; then
  cc -O2 -o "$MEMCPY" "$HERE/memcpy.c" 2>/dev/null || MEMCPY=""
fi

# Peers: a venv on Debian's python with --system-site-packages, so Debian's python3-torch (CPU)
# serves them. PyPI's torch wheel drags in gigabytes of CUDA wheels; the peers' metadata pins
# torch>=2 (runai) which Debian 12 does not have, so they go in with --no-deps plus their
# non-torch dependencies; `peers.py check` then proves each one imports and works.
VENV=$DIR/venv
PY=$VENV/bin/python
READY_PEERS=()
install_peer() {  # name -> 0 when usable
  local name=$1 marker=$VENV/.ok-$1
  [[ -f $marker ]] && return 0
  case $name in
    safetensors) "$PY" -m pip install -q --no-deps safetensors ;;
    tensorizer) "$PY" -m pip install -q protobuf psutil boto3 redis hiredis libnacl &&
                "$PY" -m pip install -q --no-deps tensorizer ;;
    runai) "$PY" -m pip install -q humanize && "$PY" -m pip install -q --no-deps runai-model-streamer ;;
    *) echo "unknown peer $name" >&2; return 1 ;;
  esac >&2 || return 1
  "$PY" "$HERE/peers.py" check "$name" >&2 || return 1
  touch "$marker"
}
if [[ -n $PEERS ]]; then
  if ! "$SYS_PY" -c 'import torch' 2>/dev/null; then
    if ((EUID == 0)); then say "installing python3-torch (Debian, CPU)"; apt-get install -y -q python3-torch python3-venv >&2 || true; fi
  fi
  if ! "$SYS_PY" -c 'import torch' 2>/dev/null; then
    say "SKIP all peers: $SYS_PY cannot import torch (apt-get install python3-torch)"
  else
    [[ -x $PY ]] || "$SYS_PY" -m venv --system-site-packages "$VENV" >&2 || say "SKIP all peers: cannot create a venv at $VENV"
    if [[ -x $PY ]]; then
      for peer in $PEERS; do
        if timeout 600 bash -c "$(declare -f install_peer); VENV='$VENV' PY='$PY' HERE='$HERE' install_peer $peer"; then
          READY_PEERS+=("$peer")
        else
          say "SKIP peer $peer: it could not be installed or does not work here (see the lines above)"
        fi
      done
    fi
  fi
fi
say "peers ready: ${READY_PEERS[*]:-none}"

TENSORS=$DIR/model-$SIZE.tensors
if [[ " ${READY_PEERS[*]} " == *" tensorizer "* && ! -f $TENSORS ]]; then
  say "writing the tensorizer copy with its own serializer: $TENSORS"
  start=$(now)
  if "$PY" "$HERE/peers.py" write-tensors "$MODEL" "$TENSORS" >&2; then
    sync
    say "tensorizer copy written in $(since "$start") s"
  else
    say "SKIP peer tensorizer: its serializer failed"
    READY_PEERS=("${READY_PEERS[@]/tensorizer/}")
  fi
fi

# ---------------------------------------------------------------------------------------------
# Measurements. Each prints "BYTES SECONDS" on stdout; anything else goes to stderr.

OUT=$DIR/results-$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUT"
RESULTS=$OUT/results.tsv
printf '# method\tround\tbytes\tseconds\n' >"$RESULTS"

drop_cache() {
  sync
  if ! { echo 3 >/proc/sys/vm/drop_caches; } 2>/dev/null; then
    local files=("${FILES[@]}")
    [[ -f $TENSORS ]] && files+=("$TENSORS")
    "$SYS_PY" "$HERE/peers.py" drop "${files[@]}"
  fi
}

warm_cache() { cat "${FILES[@]}" >/dev/null; }

write_manifest() { volume_manifest bench "$MODEL" "$1" "$OUT/manifest-$1.yaml"; }  # target -> path

# tensorinit: GB/s from the report's own stage seconds (the contract's throughput); the wall
# time of the whole command (start, header parse, arena create and removal) goes in as a row too.
run_tensorinit() {  # target tag round
  local target=$1 tag=$2 round=$3 report=$OUT/report-$2-$3.json start end
  local manifest wall
  manifest=$(write_manifest "$target")
  start=$(now)
  "$TI" load -f "$manifest" --report "$report" 2>"$OUT/log-$tag-$round.txt" || {
    say "tensorinit load ($tag) failed: $(tail -1 "$OUT/log-$tag-$round.txt")"; return 1; }
  wall=$(since "$start")
  "$SYS_PY" - "$report" "$wall" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
print(r["bytes"], r["seconds"]["stage"], sys.argv[2], json.dumps(r.get("direct_io")), r.get("readers"))
EOF
}

run_dd() {
  local start
  start=$(now)
  for f in "${FILES[@]}"; do dd if="$f" of=/dev/null bs=4M status=none; done
  echo "$MODEL_BYTES $(since "$start")"
}

run_fio() {
  local json=$OUT/fio-$1.json
  fio --name=seqread --readonly --rw=read --bs=16M --iodepth=16 --ioengine="$FIO_ENGINE" --direct=1 \
      --filename="$(IFS=:; echo "${FILES[*]}")" --file_service_type=sequential \
      --output-format=json --output="$json" >/dev/null
  "$SYS_PY" - "$json" <<'EOF'
import json, sys
job = json.load(open(sys.argv[1]))["jobs"][0]["read"]
print(job["io_bytes"], job["runtime"] / 1000.0)
EOF
}

run_peer() {  # peer round
  local what=$MODEL
  [[ $1 == tensorizer ]] && what=$TENSORS
  "$PY" "$HERE/peers.py" "load-$1" "$what" 2>"$OUT/log-$1-$2.txt" | "$SYS_PY" -c '
import json, sys
r = json.loads(sys.stdin.read().strip().splitlines()[-1])
print(r["bytes"], r["seconds"])' || { say "peer $1 failed: $(tail -1 "$OUT/log-$1-$2.txt")"; return 1; }
}

run_memcpy() {
  if [[ -n $MEMCPY ]]; then "$MEMCPY" 1; else "$SYS_PY" "$HERE/peers.py" memcpy 1; fi | "$SYS_PY" -c '
import json, sys
r = json.loads(sys.stdin.read())
print(r["bytes"], r["seconds"])'
}

record() {  # method round bytes seconds
  printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$RESULTS"
  say "round $2: $(printf '%-40s' "$1") $(awk -v b="$3" -v s="$4" 'BEGIN { printf "%.2f", b / s / 1e9 }') GB/s  ($4 s)"
}

measure() {  # key round
  local key=$1 round=$2 out
  case $key in
    ti-host|ti-pagecache)
      local target=${key#ti-}
      drop_cache
      out=$(run_tensorinit "$target" "$target-cold" "$round") || return 0
      set -- $out
      record "tensorinit load $target (cold)" "$round" "$1" "$2"
      record "tensorinit load $target (cold, wall)" "$round" "$1" "$3"
      if [[ $target == host && $4 != true ]]; then say "note: the cold host load did not use O_DIRECT (direct_io=$4)"; fi
      ;;
    dd) drop_cache; out=$(run_dd) || { say "dd failed"; return 0; }; set -- $out; record "dd bs=4M (buffered)" "$round" "$1" "$2" ;;
    fio) drop_cache; out=$(run_fio "$round") || { say "fio failed"; return 0; }; set -- $out; record "fio O_DIRECT 16M x16" "$round" "$1" "$2" ;;
    peer-*)
      local peer=${key#peer-}
      drop_cache
      out=$(run_peer "$peer" "$round") || return 0
      set -- $out
      record "peer $peer (cold)" "$round" "$1" "$2"
      ;;
    ti-host-warm)
      warm_cache
      out=$(run_tensorinit host host-warm "$round") || return 0
      set -- $out
      record "tensorinit load host (warm)" "$round" "$1" "$2"
      record "tensorinit load host (warm, wall)" "$round" "$1" "$3"
      if [[ $4 != false ]]; then say "note: the warm host load used O_DIRECT (direct_io=$4)"; fi
      ;;
    memcpy) out=$(run_memcpy) || { say "memcpy failed"; return 0; }; set -- $out; record "memcpy (warm baseline)" "$round" "$1" "$2" ;;
  esac
}

COLD=(fio ti-host dd ti-pagecache)
[[ -z $FIO_ENGINE ]] && COLD=(ti-host dd ti-pagecache)
for peer in "${READY_PEERS[@]}"; do [[ -n $peer ]] && COLD+=("peer-$peer"); done
WARM=(ti-host-warm memcpy)

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
say "cold: $ROUNDS rounds of: ${COLD[*]} (order rotated each round; fio engine ${FIO_ENGINE:-none})"
for ((r = 1; r <= ROUNDS; r++)); do
  n=${#COLD[@]}
  for ((i = 0; i < n; i++)); do measure "${COLD[(i + r - 1) % n]}" "$r"; done
done
say "warm: $ROUNDS rounds of: ${WARM[*]}"
for ((r = 1; r <= ROUNDS; r++)); do
  for key in "${WARM[@]}"; do measure "$key" "$r"; done
done
drop_cache

{
  echo "tensorinit benchmark: $SIZE in ${#FILES[@]} file(s) ($MODEL_BYTES bytes), $ROUNDS rounds interleaved, $(nproc) cores"
  echo "GB/s = 1e9 bytes/s; medians over rounds; fio engine ${FIO_ENGINE:-none}; peers: ${READY_PEERS[*]:-none}"
  echo "load average before: $LOAD_BEFORE, after: $(cut -d' ' -f1-3 /proc/loadavg) (other work on these cores skews every row)"
  echo
  "$SYS_PY" "$HERE/peers.py" table "$RESULTS"
} | tee "$OUT/table.txt"
say "raw results, reports and logs: $OUT"
