# A start-up cache whose path holds model.cache (the write-through copy of remote weights), as an
# operator writes it: caches at ~/.cache, model.cache at ~/.cache/tensorinit. Before the fix the
# cache was saved with the weights and their records in it, and restored into model.cache beside
# the plan of the next start: whoever could write the cache (its server, the store) planted
# weights with a record that the next start trusted over the remote. Such a cache is now
# refused like one over a local weight source: neither restored nor saved, the start goes on.
source "$(dirname "$0")/lib.sh"
mkdir -p "$TEST_TMP/www"
"$TENSORINIT" synth --size 1MiB --seed 7 "$TEST_TMP/www/one" 2>/dev/null
start_fault_server "$TEST_TMP/www"
port=$fault_port
vol=$TEST_TMP/vol
# home_manifest NAME HOME: the remote model written through to HOME/.cache/tensorinit, and a
# start-up cache at HOME/.cache saved on exit to $vol.
home_manifest() {
  cat >"$TEST_TMP/$1.yaml" <<EOF
version: 1
model:
  name: w
  cache: $2/.cache/tensorinit
  sources: [{type: http, url: "http://127.0.0.1:$port/one/", retries: 1}]
report: ''
handoff: {mode: signal, start: after-load, command: [sh, -c, 'TENSORINIT_MODEL_DIR=$TEST_TMP/www/one $VERIFY >$TEST_TMP/$1.verified 2>&1 || rm $TEST_TMP/$1.verified']}
caches:
  - {name: home, path: $2/.cache, save: on-exit, sources: [{type: volume, path: $vol}]}
EOF
  echo "$TEST_TMP/$1.yaml"
}

expect_exit 0 "first start: runs" "$TENSORINIT" run -f "$(home_manifest first "$TEST_TMP/home1")"
check "first start: the cache is refused, said so" grep -q "neither restored nor saved" "$TEST_TMP/stderr"
check "first start: no archive of the weights saved" test ! -e "$vol/home.tar.zst"
check "first start: the server got the remote's weights" test -e "$TEST_TMP/first.verified"

# A poisoned archive in the store (written by anyone who can write it): other weights under
# model.cache's name, with a record copied from a real fill so that it reads as complete.
"$TENSORINIT" synth --size 1MiB --seed 8 "$TEST_TMP/fake" 2>/dev/null
mkdir -p "$TEST_TMP/poison/tensorinit/w"
cp "$TEST_TMP/fake/model.safetensors" "$TEST_TMP/poison/tensorinit/w/model.safetensors"
cp "$TEST_TMP/home1/.cache/tensorinit/w/model.safetensors.tensorinit.json" "$TEST_TMP/poison/tensorinit/w/"
cat >"$TEST_TMP/poisoner.yaml" <<EOF
version: 1
model: {name: poisoner, sources: [{type: image, path: "$TEST_TMP/www/one"}]}
report: ''
handoff: {mode: signal, start: after-load, command: ['true']}
caches:
  - {name: home, path: $TEST_TMP/poison, save: on-exit, sources: [{type: volume, path: $vol}]}
EOF
expect_exit 0 "the poisoned archive is saved" "$TENSORINIT" run -f "$TEST_TMP/poisoner.yaml"
check "the poisoned archive is in the store" test -e "$vol/home.tar.zst"

expect_exit 0 "next start (a fresh home): runs" "$TENSORINIT" run -f "$(home_manifest next "$TEST_TMP/home2")"
check "next start: the cache is refused, nothing restored into model.cache" \
  test ! -e "$TEST_TMP/home2/.cache/tensorinit/w/model.safetensors.tensorinit.json" -o \
       "$(cmp -s "$TEST_TMP/home2/.cache/tensorinit/w/model.safetensors" "$TEST_TMP/fake/model.safetensors"; echo $?)" != 0
check "next start: the server got the remote's weights" test -e "$TEST_TMP/next.verified"
exec {fault_ctl}>&-
rm -f /dev/shm/tensorinit-w* /dev/shm/tensorinit-poisoner* /dev/shm/.tensorinit-w.lock /dev/shm/.tensorinit-poisoner.lock
finish
