# stage.target pagecache from a remote source: the server reads the files from model.cache, so
# the load is only done once the cache holds every file (committed, with its record). A commit
# that fails after the reads (the final name taken by a directory; the header read refused by
# the remote at commit time, with an old copy left under the name by a fill that died) gave
# exit 0 and a table whose "file" entries were the remote URLs, TENSORINIT_MODEL_DIR naming a
# cache without the model (or with the old bytes). Now: exit 74, no server, nothing trusted.
source "$(dirname "$0")/lib.sh"
mkdir -p "$TEST_TMP/www"
"$TENSORINIT" synth --size 1MiB --seed 7 "$TEST_TMP/www/one" 2>/dev/null
"$TENSORINIT" synth --size 1MiB --seed 8 "$TEST_TMP/old" 2>/dev/null  # same shapes, other bytes
ran=$TEST_TMP/server-ran
start_fault_server "$TEST_TMP/www"
port=$fault_port
pc_manifest() {  # pc_manifest NAME: a pagecache load of /one/ through $TEST_TMP/cache
  cat >"$TEST_TMP/$1.yaml" <<EOF
version: 1
model:
  name: $1
  cache: $TEST_TMP/cache
  sources: [{type: http, url: "http://127.0.0.1:$port/one/", retries: 1}]
stage: {target: pagecache}
report: ''
handoff: {mode: exec, command: [sh, -c, 'touch $ran']}
EOF
  echo "$TEST_TMP/$1.yaml"
}
file=model.safetensors

# 1. The final name is a directory: the rename fails after every byte was read.
mkdir -p "$TEST_TMP/cache/pc-dir/$file/x"
expect_exit 74 "pagecache, cache commit fails (rename): refused" "$TENSORINIT" run -f "$(pc_manifest pc-dir)"
check "rename: the error names the cache" grep -q "tensorinit: error: .*model.cache" "$TEST_TMP/stderr"
check "rename: no server started" test ! -e "$ran"
check "rename: no record" test ! -e "$TEST_TMP/cache/pc-dir/$file.tensorinit.json"
check "rename: nothing left in /dev/shm" no_leftovers pc-dir

# 2. An old copy without its record (a fill that died after removing it) and the remote refusing
#    the header read that completes the new copy (the 5th request for the file: probe, length,
#    header, tensors, then the header again for the cache).
mkdir -p "$TEST_TMP/cache/pc-old" && cp "$TEST_TMP/old/$file" "$TEST_TMP/cache/pc-old/$file"
echo "fault /one/$file status status=403 code=AccessDenied skip=4" >&"$fault_ctl"
expect_exit 74 "pagecache, cache commit fails (remote refuses the gap): refused" "$TENSORINIT" run -f "$(pc_manifest pc-old)"
check "gap: no server started" test ! -e "$ran"
check "gap: the old copy is not trusted" test ! -e "$TEST_TMP/cache/pc-old/$file.tensorinit.json"
check "gap: nothing left in /dev/shm" no_leftovers pc-old

# 3. Control: the same load with a working cache runs the server on files that are there.
rm -rf "$TEST_TMP/cache/pc-dir"
expect_exit 0 "pagecache through a working cache: runs" "$TENSORINIT" run -f "$(pc_manifest pc-dir)"
check "the server ran" test -e "$ran"
check "the cache holds the file with its record" test -e "$TEST_TMP/cache/pc-dir/$file.tensorinit.json"
exec {fault_ctl}>&-
rm -f /dev/shm/tensorinit-pc-* /dev/shm/.tensorinit-pc-*
finish
