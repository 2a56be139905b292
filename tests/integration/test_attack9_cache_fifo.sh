# model.cache on a volume others can write (a cache shared by several pods): a FIFO put under a
# cached file's record name (`<file>.tensorinit.json`). Before the fix the next start opened it to
# read the record and waited there until someone wrote it, with every signal blocked: `load`
# never ended, SIGTERM changed nothing (the test's own bound, SIGKILL after 60 s: exit 137).
# Now the record is opened without waiting and a FIFO is not a record: the cached file is not
# trusted, the model is read from remote and cached again (exit 0, a regular record after).
source "$(dirname "$0")/lib.sh"
mkdir -p "$TEST_TMP/www"
"$TENSORINIT" synth --size 1MiB --seed 7 "$TEST_TMP/www/one" 2>/dev/null
start_fault_server "$TEST_TMP/www"
port=$fault_port
cat >"$TEST_TMP/m.yaml" <<YAML
version: 1
model:
  name: a9-fifo
  cache: $TEST_TMP/cache
  sources: [{type: http, url: "http://127.0.0.1:$port/one/", retries: 1}]
report: ''
handoff: {mode: none}
YAML
record=$TEST_TMP/cache/a9-fifo/model.safetensors.tensorinit.json
rm -rf "$TEST_TMP/cache"
expect_exit 0 "the first start fills the cache" "$TENSORINIT" load -f "$TEST_TMP/m.yaml"
check "the record is there" test -f "$record"
rm -f "$record" && mkfifo "$record"
# A hang ends only at the bound (SIGTERM first: it changed nothing before the fix).
expect_exit 0 "a FIFO as the cache record: not waited on, read from remote" \
  timeout -k 5 60 "$TENSORINIT" load -f "$TEST_TMP/m.yaml"
check "the record is a regular file again (cached anew)" test -f "$record"
exec {fault_ctl}>&-
rm -f /dev/shm/tensorinit-a9-fifo* /dev/shm/.tensorinit-a9-fifo*
finish
