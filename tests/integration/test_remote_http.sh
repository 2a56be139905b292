# Remote http sources against Debian's nginx on loopback: byte-exact loads to host and pagecache,
# the write-through cache (used by the next start, never trusted half-written, shared by
# concurrent loads), kills at random moments during a fill, clean errors, and a trickling body.
source "$(dirname "$0")/lib.sh"
nginx="bash $TESTS_DIR/tools/nginx.sh"
model=$TEST_TMP/www/tiny
"$TENSORINIT" synth --size 48MiB --shards 3 --seed 11 "$model" 2>/dev/null
"$TENSORINIT" synth --size 8MiB --seed 12 "$TEST_TMP/www/single" 2>/dev/null
port=$($nginx start "$TEST_TMP/www" "$TEST_TMP/nginx")
trap '$nginx stop "$TEST_TMP/nginx"' EXIT
base=http://127.0.0.1:$port

# remote_manifest NAME URL CACHE [extra lines...]
remote_manifest() {
  local name=$1 url=$2 cache=$3; shift 3
  {
    echo "version: 1"
    echo "model:"
    echo "  name: $name"
    [ -n "$cache" ] && echo "  cache: $cache"
    echo "  sources:"
    echo "    - {type: http, url: \"$url\", retries: 2, stall_timeout: 2s}"
    echo "stage: {chunk_size: 4MiB}"
    echo "report: ''"
    for line in "$@"; do echo "$line"; done
  } >"$TEST_TMP/$name.yaml"
  echo "$TEST_TMP/$name.yaml"
}
verify() { TENSORINIT_MODEL_DIR=$2 $VERIFY --table "$1"; }

# 1. Sharded model through the index, no cache, host target: byte-exact.
m=$(remote_manifest http-nocache "$base/tiny/" "")
sed -i 's/^stage: {chunk_size: 4MiB}/stage: {chunk_size: 1MiB, readers: 2}/' "$m"
expect_exit 0 "http: sharded model via index.json to host" "$TENSORINIT" load -f "$m" --keep
check "http: host arena byte-exact" verify /dev/shm/tensorinit-http-nocache.json "$model"
rm -f /dev/shm/tensorinit-http-nocache*
check "http: ranged reads reuse keep-alive connections" python3 - "$TEST_TMP/nginx/access.log" <<'PY'
import sys
lines = [l.split() for l in open(sys.argv[1])]
conns = {l[0] for l in lines}
assert len(lines) >= 48 and len(conns) <= 4, (len(lines), len(conns))
PY

# 2. With the cache: the first load fills it, the plan of the next start picks it.
cache=$TEST_TMP/cache
m=$(remote_manifest http-cache "$base/tiny/" "$cache")
expect_exit 0 "http: load with write-through cache" "$TENSORINIT" load -f "$m" --keep
check "http: arena byte-exact (cached load)" verify /dev/shm/tensorinit-http-cache.json "$model"
for f in "$model"/*; do
  check "cache holds $(basename "$f") byte-exact" cmp -s "$f" "$cache/http-cache/$(basename "$f")"
done
check "cache: no partial files left" not sh -c "ls '$cache/http-cache' | grep -q partial"
"$TENSORINIT" plan -f "$m" --json >"$TEST_TMP/plan.json" 2>/dev/null
check "plan: the cache is chosen next time (a volume)" python3 -c "
import json; d = json.load(open('$TEST_TMP/plan.json'))
c = d['chosen'] if 'chosen' in d else d['decision']['chosen']
assert c['type'] == 'volume' and c['path'].endswith('/http-cache'), c"
$nginx stop "$TEST_TMP/nginx"
expect_exit 0 "cache: the next start loads with the server gone" "$TENSORINIT" load -f "$m" --keep
check "cache: arena byte-exact from the cache" verify /dev/shm/tensorinit-http-cache.json "$model"
rm -f /dev/shm/tensorinit-http-cache*
port=$($nginx start "$TEST_TMP/www" "$TEST_TMP/nginx")
base=http://127.0.0.1:$port

# 3. pagecache target: needs the cache; the table points into it.
m=$(remote_manifest http-pc "$base/single/" "")
echo "stage: {target: pagecache}" >>"$m"
sed -i '/^stage: {chunk_size/d' "$m"
expect_exit 78 "pagecache from remote without model.cache is refused" "$TENSORINIT" load -f "$m"
m=$(remote_manifest http-pc "$base/single/" "$TEST_TMP/pc-cache" "handoff: {mode: exec, command: [python3, $TESTS_DIR/tools/verify_table.py]}")
sed -i 's/^stage: {chunk_size: 4MiB}/stage: {chunk_size: 4MiB, target: pagecache}/' "$m"
expect_exit 0 "pagecache from remote: the server reads the cached files" "$TENSORINIT" run -f "$m"

# 4. Kill tensorinit at random moments during a fill: a later plan never trusts a partial file;
#    whatever it trusts is byte-exact.
m=$(remote_manifest http-kill "$base/tiny/" "$TEST_TMP/kill-cache" "stage: {chunk_size: 1MiB, readers: 2}")
sed -i '0,/^stage: {chunk_size: 4MiB}/{/^stage: {chunk_size: 4MiB}/d}' "$m"
trusted=0
for i in $(seq 1 12); do
  "$TENSORINIT" load -f "$m" >/dev/null 2>&1 &
  pid=$!
  sleep "0.$((RANDOM % 8))$((RANDOM % 10))"
  kill -KILL $pid 2>/dev/null || true
  wait $pid 2>/dev/null || true
  dir=$TEST_TMP/kill-cache/http-kill
  for f in "$dir"/*.safetensors "$dir"/model.safetensors.index.json; do
    [ -e "$f.tensorinit.json" ] || continue
    trusted=$((trusted + 1))
    cmp -s "$f" "$model/$(basename "$f")" || { not_ok "kill $i: $(basename "$f") has a record but differs"; }
  done
  # Whatever the plan would trust must be exactly the model.
  if "$TENSORINIT" plan -f "$m" 2>/dev/null | grep -q "^chosen: volume"; then
    for f in "$model"/*; do cmp -s "$f" "$dir/$(basename "$f")" || not_ok "kill $i: the plan trusts a differing cache"; done
  fi
done
ok "12 kills during fills: every recorded file byte-exact ($trusted records checked)"
expect_exit 0 "after the kills, a load completes the cache" "$TENSORINIT" load -f "$m"
for f in "$model"/*; do
  check "kill cache: $(basename "$f") complete and byte-exact" cmp -s "$f" "$TEST_TMP/kill-cache/http-kill/$(basename "$f")"
done
check "kill cache: stale partials removed" not sh -c "ls '$TEST_TMP/kill-cache/http-kill' | grep -q partial"

# 5. Concurrent loads sharing one cache: all byte-exact, the cache complete, nothing duplicated.
m=$(remote_manifest http-conc "$base/tiny/" "$TEST_TMP/conc-cache")
pids=()
for i in 1 2 3; do  # each its own shm dir: one model.name has one owner per shm dir
  mkdir -p "$TEST_TMP/shm-$i"
  TENSORINIT_SHM_DIR=$TEST_TMP/shm-$i "$TENSORINIT" load -f "$m" >"$TEST_TMP/conc-$i.log" 2>&1 &
  pids+=($!)
done
rcs=0
for p in "${pids[@]}"; do wait "$p" || rcs=$((rcs + 1)); done
check "3 concurrent loads all succeed" test "$rcs" = 0
for f in "$model"/*; do
  check "concurrent cache: $(basename "$f") byte-exact" cmp -s "$f" "$TEST_TMP/conc-cache/http-conc/$(basename "$f")"
done
check "concurrent cache: no partials" not sh -c "ls '$TEST_TMP/conc-cache/http-conc' | grep -q partial"

# 6. A packed file over http, written through: byte-exact, and the cache holds the packed bytes.
mkdir -p "$TEST_TMP/www/packed"
"$TENSORINIT" pack "$TEST_TMP/www/single/model.safetensors" "$TEST_TMP/www/packed/model.safetensors.zst" 2>/dev/null
m=$(remote_manifest http-packed "$base/packed/" "$TEST_TMP/packed-cache")
sed -i 's/^  name: http-packed/  name: http-packed\n  format: packed/' "$m"
expect_exit 0 "http: a packed file from a remote source" "$TENSORINIT" load -f "$m" --keep
check "http packed: arena byte-exact" verify /dev/shm/tensorinit-http-packed.json "$TEST_TMP/www/single"
check "http packed: the cache holds the packed file" cmp -s "$TEST_TMP/www/packed/model.safetensors.zst" \
  "$TEST_TMP/packed-cache/http-packed/model.safetensors.zst"
rm -f /dev/shm/tensorinit-http-packed*

# 7. Errors: a missing model is 66; an unreachable server is 69 after retries, naming the URL.
m=$(remote_manifest http-missing "$base/nope/" "")
expect_exit 66 "http: a missing model is no usable source" "$TENSORINIT" load -f "$m"
m=$(remote_manifest http-down "http://127.0.0.1:9/tiny/?token=s3cr3t" "")
expect_exit 69 "http: an unreachable server is unavailable" "$TENSORINIT" load -f "$m"
check "http: the error names the URL" grep -q "127.0.0.1:9/tiny" "$TEST_TMP/stderr"
check "http: no query string (token) in the error" not grep -q "s3cr3t" "$TEST_TMP/stderr"
check "no arena left after failures" no_leftovers http-down

# 8. A body trickling one byte every 0.3 s is never quiet for stall_timeout: the minimum rate
#    abandons each attempt, and after the retries the load fails (69) naming it; nothing cached.
#    The fault server reads commands on the fd we hold: it exits when this script does.
start_fault_server "$TEST_TMP/www" --fault "/single/model.safetensors trickle after=4096 times=0"
m=$(remote_manifest http-trickle "http://127.0.0.1:$fault_port/single/" "$TEST_TMP/trickle-cache")
expect_exit 69 "http: a trickling body is abandoned by the minimum rate" "$TENSORINIT" load -f "$m"
check "http trickle: the error names the minimum rate" grep -q "under the minimum rate" "$TEST_TMP/stderr"
check "http trickle: no cache record" not sh -c "ls '$TEST_TMP/trickle-cache/http-trickle' | grep -q tensorinit.json"
check "http trickle: no arena left" no_leftovers http-trickle
exec {fault_ctl}>&-
finish
