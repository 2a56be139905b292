# Secrets never reach an output: a marker planted in every place a user can put a secret (URL
# userinfo and query, s3 keys and session token, ${VAR} expansions, model.key and passphrase, an
# s3 endpoint, handoff command arguments), then plan --json, load with a report, run with a child
# that dumps its environment and the tensor table, and a failure of each kind; every stdout,
# stderr, report, table, cache record and the child's environment is grepped for the marker.
# Also: a URL prefix with a ?query gets the file name before the query, not after it.
source "$(dirname "$0")/lib.sh"
nginx="bash $TESTS_DIR/tools/nginx.sh"
MARK=zq7SeCrEt7qz
out=$TEST_TMP/out   # everything tensorinit writes or prints; manifests (which hold the marker) live elsewhere
mf=$TEST_TMP/manifests
mkdir -p "$out" "$mf"
"$TENSORINIT" synth --size 6MiB --shards 2 --seed 21 "$TEST_TMP/www/tiny" 2>/dev/null
mkdir -p "$TEST_TMP/www/bucket/prefix" && cp "$TEST_TMP/www/tiny/"* "$TEST_TMP/www/bucket/prefix/"
port=$($nginx start "$TEST_TMP/www" "$TEST_TMP/nginx")
cleanup() { $nginx stop "$TEST_TMP/nginx"; rm -f /dev/shm/tensorinit-sec-*; }
trap cleanup EXIT
export TI_SEC_TOKEN="tok-$MARK-env" TI_SEC_PASS="pw-$MARK" TI_SEC_SK="sk-$MARK" TI_SEC_ST="st-$MARK"
export TI_SEC_KEY="key-$MARK"

# secret_manifest NAME SOURCE-LINE [extra lines...]
secret_manifest() {
  local name=$1 source=$2; shift 2
  {
    echo "version: 1"
    echo "model:"
    echo "  name: $name"
    echo "  cache: $out/cache"
    echo "  passphrase: \"\${TI_SEC_PASS}\""
    echo "  sources:"
    echo "    - $source"
    echo "stage: {chunk_size: 1MiB}"
    echo "report: $out/$name.report.json"
    for line in "$@"; do echo "$line"; done
  } >"$mf/$name.yaml"
  echo "$mf/$name.yaml"
}
# run_to NAME command...: stdout and stderr kept in $out/NAME.{stdout,stderr}; prints the exit code.
run_to() {
  local name=$1; shift
  local rc=0
  "$@" >"$out/$name.stdout" 2>"$out/$name.stderr" || rc=$?
  echo "$rc"
}
failures=()
expect() {  # expect CODE "description" command...: outputs in $out/<description as a file name>.*
  local want=$1 what=$2; shift 2
  local name got
  name=$(printf '%s' "$what" | tr -c 'a-zA-Z0-9' '_')
  got=$(run_to "$name" "$@")
  [ "$want" = 0 ] || failures+=("$out/$name.stderr")
  if [ "$got" = "$want" ]; then ok "$what (exit $got)"; else
    not_ok "$what: exit $got, wanted $want"; tail -3 "$out/$name.stderr" | sed 's/^/    /'; fi
}

http_url="http://user:pw-$MARK-lit@127.0.0.1:$port/tiny?token=\${TI_SEC_TOKEN}&sig=$MARK-lit"
http_source="{type: http, url: \"$http_url\", retries: 1, stall_timeout: 2s}"
s3_source="{type: s3, url: s3://bucket/prefix/, endpoint: \"http://127.0.0.1:$port\", access_key_id: AKIDTEST, secret_access_key: \"\${TI_SEC_SK}\", session_token: \"\${TI_SEC_ST}\", retries: 1}"

# 1. http with userinfo and a query: plan, load (the ?query stays after the file name), run.
m=$(secret_manifest sec-http "$http_source" "handoff: {mode: exec}")
expect 0 "plan --json (http)" "$TENSORINIT" plan -f "$m" --json
expect 0 "plan (text)" "$TENSORINIT" plan -f "$m"
expect 0 "load with a ?query in the url prefix" "$TENSORINIT" load -f "$m" --keep --report "$out/load-http.json"
check "the query came after the file name on the wire" grep -q "^.* 200 /tiny/model.safetensors.index.json?token=tok-$MARK-env" "$TEST_TMP/nginx/access.log"
cp /dev/shm/tensorinit-sec-http.json "$out/table-http.json" 2>/dev/null || not_ok "no tensor table"
check "the table is byte-exact" env TENSORINIT_MODEL_DIR="$TEST_TMP/www/tiny" $VERIFY --table "$out/table-http.json"
rm -f /dev/shm/tensorinit-sec-http*
m=$(secret_manifest sec-httprun "$http_source")
sed -i '/^  cache: /d' "$m"  # from the remote itself, not the cache the load filled
expect 0 "run: a child with the marker in its arguments dumps its environment and table" \
  "$TENSORINIT" run -f "$m" -- sh -c 'env >"$1"; cp "$TENSORINIT_TABLE" "$2"' sh "$out/child.env" "$out/child-table.json" "arg-$MARK"
rm -f /dev/shm/tensorinit-sec-httprun*

# 2. s3 (signed, path style; nginx ignores the signature) with the secret key and session token.
m=$(secret_manifest sec-s3 "$s3_source")
expect 0 "plan --json (s3)" "$TENSORINIT" plan -f "$m" --json
expect 0 "load (s3)" "$TENSORINIT" load -f "$m" --keep
cp /dev/shm/tensorinit-sec-s3.json "$out/table-s3.json" 2>/dev/null || not_ok "no s3 tensor table"
rm -f /dev/shm/tensorinit-sec-s3*

# 3. Failures of each kind, each with the marker in the failing value.
m=$(secret_manifest sec-404 "{type: http, url: \"http://u:$MARK@127.0.0.1:$port/none?t=$MARK\", retries: 0}")
expect 66 "fail: 404 under a tokened url" "$TENSORINIT" load -f "$m"
closed=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
m=$(secret_manifest sec-down "{type: http, url: \"http://u:$MARK@127.0.0.1:$closed/m?t=$MARK\", retries: 0}")
expect 69 "fail: unreachable" "$TENSORINIT" load -f "$m"
m=$(secret_manifest sec-ep "{type: s3, url: s3://bucket/prefix/, endpoint: \"http://k:$MARK@127.0.0.1:$port\"}")
expect 78 "fail: s3 endpoint with credentials" "$TENSORINIT" plan -f "$m"
m=$(secret_manifest sec-bucket "{type: s3, url: \"s3://AKID:$MARK@bucket/p/\"}")
expect 78 "fail: credentials where the bucket goes" "$TENSORINIT" plan -f "$m"
m=$(secret_manifest sec-scheme "{type: http, url: \"ftp://u:$MARK@h/?t=$MARK\"}")
expect 78 "fail: not an http url" "$TENSORINIT" plan -f "$m"
m=$(secret_manifest sec-nos3 "{type: s3, url: s3://bucket/nothing/, endpoint: \"http://127.0.0.1:$port\", secret_access_key: \"\${TI_SEC_SK}\", access_key_id: AKIDTEST, retries: 0}")
expect 66 "fail: s3 object missing" "$TENSORINIT" load -f "$m"
m=$(secret_manifest sec-key "{type: image, path: \"$TEST_TMP/www/tiny\"}")
sed -i "s/^  passphrase: .*/  key: \"\${TI_SEC_KEY}\"/" "$m"
expect 0 "a model.key on a model that is not encrypted" "$TENSORINIT" load -f "$m"
m=$(secret_manifest sec-bad "{type: image, path: /nonexistent}")
sed -i 's/^stage: .*/stage: {readers: "${TI_SEC_TOKEN}"}/' "$m"
expect 78 "fail: a secret expanded into a key where it does not belong" "$TENSORINIT" plan -f "$m"
m=$(secret_manifest sec-run "{type: image, path: \"$TEST_TMP/www/tiny\"}")
expect 127 "fail: a command that does not exist, its arguments secret" "$TENSORINIT" run -f "$m" -- "/nonexistent/server" "--token=$MARK"

# 4. The marker is nowhere: not in any output, report, table, cache record or /dev/shm name, and
# not in the child's environment beyond the variables this test set itself.
ls -a /dev/shm >"$out/shm-names"
find "$out" -type f >"$out/files"
leaks=$(grep -rlaF "$MARK" "$out" --exclude=child.env || true)
check "no output holds the marker${leaks:+: $leaks}" test -z "$leaks"
check "the child's environment holds it only in the test's own TI_SEC_ variables" \
  not sh -c "grep -aF '$MARK' '$out/child.env' | grep -v '^TI_SEC_'"
check "the child got TENSORINIT_MODEL_DIR redacted" grep -q "^TENSORINIT_MODEL_DIR=.*\*\*\*@127.0.0.1" "$out/child.env"
check "the report names the url redacted" grep -qF "http://***@127.0.0.1:$port/tiny?..." "$out/load-http.json"
check "the table names the url redacted" grep -qF "http://***@127.0.0.1:$port/tiny?..." "$out/table-http.json"
check "the child's table names it redacted too" grep -qF "http://***@127.0.0.1:$port/tiny?..." "$out/child-table.json"
one_error_line() {
  local f
  for f in "${failures[@]}"; do [ "$(grep -c '^tensorinit: error:' "$f")" = 1 ] || { echo "    $f"; return 1; }; done
}
check "each failure printed one error line" one_error_line
finish
