#!/usr/bin/env bash
# Remote loads on loopback, same files, same run, interleaved rounds, medians:
#   tensorinit (http source, nginx) | tensorinit (s3 source, moto_server) |
#   curl, one stream per file | aria2c -x16 -s16 (Debian's aria2)
# Every row lands the bytes in /dev/shm (tensorinit: the arena; the others: files), the page
# cache of the served files is warm (loopback: the network path is what is measured).
# usage: tests/bench/remote.sh [SIZE (1GiB)] [ROUNDS (3)]   TENSORINIT=build/tensorinit
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SIZE=${1:-1GiB}
ROUNDS=${2:-3}
TI=${TENSORINIT:-$ROOT/build/tensorinit}
DIR=${BENCH_DIR:-/var/tmp/tensorinit-remote-bench}
OUT=/dev/shm/tensorinit-remote-bench
rm -rf "$DIR" "$OUT" && mkdir -p "$DIR/www" "$OUT"
"$TI" synth --size "$SIZE" --shards 2 --seed 3 "$DIR/www/m" 2>/dev/null
bytes=$(du -cb "$DIR"/www/m/*.safetensors | tail -1 | cut -f1)
cat "$DIR"/www/m/* >/dev/null
port=$(bash "$ROOT/tests/tools/nginx.sh" start "$DIR/www" "$DIR/nginx")
mport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
moto_server -H 127.0.0.1 -p "$mport" >"$DIR/moto.log" 2>&1 &
moto=$!
trap 'bash "$ROOT/tests/tools/nginx.sh" stop "$DIR/nginx"; kill $moto 2>/dev/null; rm -rf "$OUT" /dev/shm/tensorinit-rb-*' EXIT
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench
for _ in $(seq 50); do curl -s "http://127.0.0.1:$mport" >/dev/null && break; sleep 0.2; done
python3 - "$mport" "$DIR/www/m" <<'PY'
import boto3, os, sys
s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{sys.argv[1]}", region_name="us-east-1")
s3.create_bucket(Bucket="bench")
for f in os.listdir(sys.argv[2]):
    s3.upload_file(os.path.join(sys.argv[2], f), "bench", "m/" + f)
PY
manifest() {  # manifest NAME SOURCE-YAML
  printf 'version: 1\nmodel:\n  name: %s\n  sources:\n    - %s\nstage: {chunk_size: 16MiB, memory_limit: 512MiB}\nreport: ""\nhandoff: {mode: none}\n' "$1" "$2" >"$DIR/$1.yaml"
}
manifest rb-http "{type: http, url: \"http://127.0.0.1:$port/m/\"}"
manifest rb-s3 "{type: s3, url: \"s3://bench/m/\", endpoint: \"http://127.0.0.1:$mport\", connections: 4, stall_timeout: 60s}"
files=$(cd "$DIR/www/m" && ls *.safetensors)

timed() {  # timed NAME command...: seconds on stdout, peak RSS (KiB) in $DIR/NAME.rss
  local name=$1; shift
  rm -rf "${OUT:?}"/* /dev/shm/tensorinit-rb-*
  local t0 t1
  t0=$(date +%s.%N)
  /usr/bin/time -f %M -o "$DIR/$name.rss.now" "$@" >/dev/null 2>"$DIR/$name.err" || { echo "$name failed:" >&2; tail -3 "$DIR/$name.err" >&2; exit 1; }
  t1=$(date +%s.%N)
  cat "$DIR/$name.rss.now" >>"$DIR/$name.rss"
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f\n", b - a }'
}
export OUT port files
curl_all=(bash -c 'for f in $files; do curl -s -o "$OUT/$f" "http://127.0.0.1:$port/m/$f"; done')
aria_all=(bash -c 'for f in $files; do aria2c -q -x16 -s16 -k1M --file-allocation=none -d "$OUT" "http://127.0.0.1:$port/m/$f"; done')

declare -A t
rows="tensorinit-http tensorinit-s3 curl aria2c"
for r in $(seq "$ROUNDS"); do
  t[tensorinit-http]+=" $(timed tensorinit-http "$TI" load -f "$DIR/rb-http.yaml")"
  t[curl]+=" $(timed curl "${curl_all[@]}")"
  t[aria2c]+=" $(timed aria2c "${aria_all[@]}")"
  t[tensorinit-s3]+=" $(timed tensorinit-s3 "$TI" load -f "$DIR/rb-s3.yaml")"
  echo "round $r done" >&2
done
median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
best=0
declare -A gbps
for row in $rows; do
  s=$(echo "${t[$row]}" | median)
  gbps[$row]=$(awk -v b="$bytes" -v s="$s" 'BEGIN { printf "%.3f", b / s / 1e9 }')
  best=$(awk -v a="$best" -v b="${gbps[$row]}" 'BEGIN { print (b > a ? b : a) }')
done
printf '%-18s %8s %8s %8s %10s\n' method "GB/s" "/aria2c" "/best" "peak RSS"
for row in $rows; do
  rss=$(sort -n "$DIR/$row.rss" | tail -1)
  printf '%-18s %8s %8.2f %8.2f %8s MiB\n' "$row" "${gbps[$row]}" \
    "$(awk -v a="${gbps[$row]}" -v b="${gbps[aria2c]}" 'BEGIN { print a / b }')" \
    "$(awk -v a="${gbps[$row]}" -v b="$best" 'BEGIN { print a / b }')" "$((rss / 1024))"
done
echo "($SIZE in 2 files, $ROUNDS rounds, medians; $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))"
