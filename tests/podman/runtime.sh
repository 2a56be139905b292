# The packaged artifact under podman, as users run it (sourced by tests/podman/run.sh, which
# defines P, work, root, here, tensorinit, ok, not_ok, wait_for, step).

step "package the artifact"
[ -x "$tensorinit" ] || die "no tensorinit binary at $tensorinit (bash scripts/build.sh)"
rm -rf "$work/dist" "$work/ctx"
TENSORINIT=$tensorinit DIST=$work/dist GZIP_LEVEL=1 bash "$root/scripts/package.sh" >"$work/package.log" 2>&1 ||
  die "scripts/package.sh failed: $(tail -3 "$work/package.log")"
artifact=$(ls -d "$work"/dist/tensorinit-*-linux-*/ | head -1)

# The build context: the artifact, the client package, the test server, manifests, a model.
ctx=$work/ctx
mkdir -p "$ctx/artifact" "$ctx/model" "$work/status"
cp -a "$artifact/." "$ctx/artifact/"
cp -r "$root/examples/clients/python/tensorinit_client" "$ctx/"
cp "$here/server.py" "$ctx/"
"$tensorinit" synth --size 4MiB --shards 2 --dtype bf16 --seed 7 "$ctx/model" >/dev/null 2>&1
manifest() {  # manifest NAME SOURCE_TYPE PATH MODE: a deployment.yaml in the context
  local await=; [ "$4" = signal ] && await=", --await-usr1"
  cat >"$ctx/$1.yaml" <<EOF
version: 1
model:
  name: tiny
  sources:
    - {type: $2, path: $3}
stage:
  target: host
handoff:
  mode: $4
  start: early
  command: [python3, /opt/test/server.py$await]
  grace: 20s
EOF
}
manifest volume volume /mnt/models/tiny signal
manifest baked image /models/tiny signal
manifest exec volume /mnt/models/tiny exec
cat >"$ctx/Containerfile" <<'EOF'
FROM docker.io/library/python:3.11-slim
COPY artifact/ /usr/local/
COPY tensorinit_client/ /usr/local/lib/python3.11/dist-packages/tensorinit_client/
COPY server.py /opt/test/server.py
COPY volume.yaml /etc/tensorinit/deployment.yaml
ENTRYPOINT ["tensorinit", "run", "-f", "/etc/tensorinit/deployment.yaml", "--"]
CMD []
EOF
printf '%s\n' 'FROM localhost/tensorinit-test:volume' 'COPY model/ /models/tiny/' \
  'COPY baked.yaml /etc/tensorinit/deployment.yaml' >"$ctx/Containerfile.baked"
step "build the test images"
"${P[@]}" build --quiet --network none -f "$ctx/Containerfile" -t localhost/tensorinit-test:volume "$ctx" >/dev/null
"${P[@]}" build --quiet --network none -f "$ctx/Containerfile.baked" -t localhost/tensorinit-test:baked "$ctx" >/dev/null

# The weights on a named volume, mounted read-only (podman run -v model:/mnt/models:ro).
"${P[@]}" volume rm -f tensorinit-test-model >/dev/null 2>&1 || true
"${P[@]}" volume create tensorinit-test-model >/dev/null
mnt=$("${P[@]}" volume inspect --format '{{.Mountpoint}}' tensorinit-test-model)
mkdir -p "$mnt/tiny" && cp "$ctx"/model/* "$mnt/tiny/" && chmod -R a+rX "$mnt"
vol=(-v tensorinit-test-model:/mnt/models:ro)
run_opts=(--rm --network none --shm-size 64m)
out=$work/out

# expect CODE "what" podman-run-args...: the container's exit code and its output in $out.
expect() {
  local want=$1 what=$2 got=0; shift 2
  timeout 600 "${P[@]}" run "$@" >"$out" 2>&1 || got=$?
  if [ "$got" = "$want" ]; then ok "$what (exit $got)"; return 0; fi
  not_ok "$what: exit $got, wanted $want"; sed 's/^/    /' "$out" | tail -6; return 1
}
verified() { grep -q "verified [1-9][0-9]* tensors from $1 .*: 0 differ, 0 unexpected" "$out"; }

step "weights on a read-only volume, signal mode"
expect 0 "volume (read-only), signal mode with early start" "${run_opts[@]}" "${vol[@]}" localhost/tensorinit-test:volume &&
  { verified "volume /mnt/models/tiny" && ok "every tensor byte for byte inside the container (volume)" ||
    { not_ok "volume: not verified"; cat "$out"; }; }

step "weights baked into the image"
expect 0 "baked into the image" "${run_opts[@]}" localhost/tensorinit-test:baked &&
  { verified "image /models/tiny" && ok "every tensor byte for byte inside the container (baked)" ||
    { not_ok "baked: not verified"; cat "$out"; }; }

step "exec mode, the manifest mounted over the image's"
expect 0 "exec mode" "${run_opts[@]}" "${vol[@]}" -v "$ctx/exec.yaml:/etc/tensorinit/deployment.yaml:ro" \
  localhost/tensorinit-test:volume && { verified "volume" && ok "exec mode: every tensor byte for byte" || not_ok "exec: not verified"; }

step "--shm-size too small"
if expect 74 "--shm-size 1m for a 4 MiB model" --rm --network none --shm-size 1m "${vol[@]}" localhost/tensorinit-test:volume; then
  line=$(grep 'tensorinit: error:' "$out" || true)
  if [ "$(grep -c 'tensorinit: error:' "$out")" = 1 ] && grep -q -- '--shm-size' <<<"$line" && ! grep -q verified "$out"; then
    ok "one error line naming --shm-size, no server on those weights: ${line:0:120}..."
  else not_ok "shm error line: [$line]"; fi
fi

step "--read-only root, --user 1000:1000"
expect 0 "--read-only --user 1000:1000" "${run_opts[@]}" --read-only --user 1000:1000 "${vol[@]}" localhost/tensorinit-test:volume &&
  { grep -q "as uid 1000:" "$out" && verified volume && ok "read-only root, uid 1000: every tensor byte for byte" ||
    { not_ok "read-only/user: not verified"; cat "$out"; }; }

# A long-running server (--serve) in exec mode; events land in $work/status/<name>/events.
serve() {  # serve NAME [extra podman run args...] -- [server args...]
  local name=$1; shift
  local podman_args=() server_args=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do podman_args+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  server_args=("$@")
  rm -rf "$work/status/$name" && mkdir -p "$work/status/$name" && chmod 0777 "$work/status/$name"
  "${P[@]}" rm -f "$name" >/dev/null 2>&1 || true
  "${P[@]}" run -d --name "$name" --network none --shm-size 64m "${vol[@]}" -v "$work/status/$name:/status" \
    "${podman_args[@]}" localhost/tensorinit-test:volume python3 /opt/test/server.py --serve --status /status \
    "${server_args[@]}" >/dev/null
  if wait_for "$work/status/$name/events" '^serving'; then return 0; fi
  not_ok "$name: the server never got to serving"; "${P[@]}" logs "$name" 2>&1 | tail -5 | sed 's/^/    /'
  return 1
}
exit_code() { "${P[@]}" wait "$1" 2>/dev/null | tail -1; }

step "podman kill -s HUP/USR1, podman stop -t N"
if serve ti-signals -v "$ctx/exec.yaml:/etc/tensorinit/deployment.yaml:ro" --; then
  for sig in HUP USR1; do
    "${P[@]}" kill -s "$sig" ti-signals >/dev/null
    if wait_for "$work/status/ti-signals/events" "^got SIG$sig"; then ok "podman kill -s $sig reaches the server through tensorinit"
    else not_ok "podman kill -s $sig: not forwarded"; fi
  done
  "${P[@]}" stop -t 60 ti-signals >/dev/null
  code=$(exit_code ti-signals)
  check_code() { if [ "$1" = "$2" ]; then ok "$3 (exit $1)"; else not_ok "$3: exit $1, wanted $2"; fi; }
  check_code "$code" 143 "podman stop: the server dies of SIGTERM, the container exits 143"
  "${P[@]}" rm -f ti-signals >/dev/null 2>&1 || true
fi
if serve ti-term -- --exit-on-term 7; then
  "${P[@]}" stop -t 60 ti-term >/dev/null
  code=$(exit_code ti-term)
  if [ "$code" = 7 ] && grep -q '^got SIGTERM' "$work/status/ti-term/events"; then
    ok "podman stop: SIGTERM delivered to the server, the container exits with the server's code (7)"
  else not_ok "podman stop with a server that exits 7: exit $code"; fi
  "${P[@]}" rm -f ti-term >/dev/null 2>&1 || true
fi

step "two containers sharing IPC with one model name"
# Decided for all engineers: a model name in a shm dir is owned (flock on
# <shm>/.tensorinit-<model>.lock); a second instance exits 69 naming the holder and the fix. A build
# without that lock reports this case as TODO (an expected failure), not as a failure.
if serve ti-ipc-a --ipc=shareable --; then
  has_lock=0
  "${P[@]}" exec ti-ipc-a ls -a /dev/shm 2>/dev/null | grep -qx '.tensorinit-tiny.lock' && has_lock=1
  code=0
  timeout 600 "${P[@]}" run --rm --network none --ipc=container:ti-ipc-a "${vol[@]}" localhost/tensorinit-test:volume >"$out" 2>&1 || code=$?
  line=$(grep 'tensorinit: error:' "$out" || true)
  if [ "$code" = 69 ] && grep -q 'model.name' <<<"$line" && grep -qi 'pid' <<<"$line"; then
    ok "a second container in the first one's IPC namespace, same model name: exit 69 naming the holder and the fix: ${line:0:160}"
  elif [ "$has_lock" = 0 ]; then
    echo "not ok - a second container sharing IPC, same model name: exit $code, wanted 69 # TODO this build has no ownership lock (.tensorinit-tiny.lock)"
  else
    not_ok "a second container sharing IPC, same model name: exit $code, wanted 69 with the holder and the fix: [$line]"
    tail -4 "$out" | sed 's/^/    /'
  fi
  # The first container is untouched: its server still runs and its weights still verify.
  "${P[@]}" kill -s USR2 ti-ipc-a >/dev/null
  if wait_for "$work/status/ti-ipc-a/events" "^reverified"; then
    line=$(grep '^reverified' "$work/status/ti-ipc-a/events")
    if grep -q ': 0 differ' <<<"$line"; then ok "the first container's weights still verify after the second one ($line)"
    else not_ok "the first container's weights changed under it: $line"; fi
  else not_ok "the first container stopped answering"; fi
  "${P[@]}" stop -t 60 ti-ipc-a >/dev/null
  "${P[@]}" rm -f ti-ipc-a >/dev/null 2>&1 || true
fi

if [ "${KEEP:-0}" != 1 ]; then
  "${P[@]}" volume rm -f tensorinit-test-model >/dev/null 2>&1 || true
  "${P[@]}" rmi -f localhost/tensorinit-test:baked localhost/tensorinit-test:volume >/dev/null 2>&1 || true
fi
