# `podman build -f container/Dockerfile` for real, then an example image FROM it (sourced by
# tests/podman/run.sh, which defines P, work, root, ok, not_ok, step).
#
# The build context is the repository root filtered by container/Dockerfile.dockerignore
# (--ignorefile: podman 4.3 does not read <Dockerfile>.dockerignore by itself). The build stage
# reaches the Debian mirror (scripts/deps.sh): --network host. CUDA_VERSION is empty: NVIDIA's
# repository is unreachable here, so the binary is built without CUDA (target cuda exits 69).

ignore=(--ignorefile "$root/container/Dockerfile.dockerignore")
"${P[@]}" build --help 2>/dev/null | grep -q -- '--ignorefile' || ignore=()
bopts=(--network host --build-arg CUDA_VERSION= --layers)
# The build stage's scripts/deps.sh pip-installs the test tools from PyPI. Where HTTPS leaves this
# machine through a proxy with its own CA (as here: pip is told so in /etc/pip.conf), the RUN steps
# get the host's CA bundle and a pip.conf naming it, as bind mounts: nothing lands in the image.
if [ -n "${PIP_CERT:-}${REQUESTS_CA_BUNDLE:-}" ] || grep -qs '^cert' /etc/pip.conf; then
  printf '[global]\ncert = /etc/tensorinit-build-ca.crt\n' >"$work/pip.conf"
  bopts+=(-v "/etc/ssl/certs/ca-certificates.crt:/etc/tensorinit-build-ca.crt:ro" -v "$work/pip.conf:/etc/pip.conf:ro")
fi
timed_build() {  # timed_build LOG what podman-build-args...
  local log=$1 what=$2 t0 code=0; shift 2
  t0=$(date +%s)
  nice -n 19 "${P[@]}" build "${bopts[@]}" "$@" >"$log" 2>&1 || code=$?
  if [ "$code" = 0 ]; then ok "$what ($(($(date +%s) - t0)) s)"; return 0; fi
  not_ok "$what: exit $code"; tail -15 "$log" | sed 's/^/    /'; return 1
}

step "podman build -f container/Dockerfile (target tensorinit, then slim)"
size() { "${P[@]}" image inspect --format '{{.Size}}' "$1" | awk '{printf "%.1f MB", $1 / 1e6}'; }
if timed_build "$work/build-tensorinit.log" "podman build -f container/Dockerfile -t tensorinit ." \
  -f "$root/container/Dockerfile" "${ignore[@]}" -t localhost/tensorinit "$root"; then
  timed_build "$work/build-slim.log" "podman build --target slim (layers cached)" \
    -f "$root/container/Dockerfile" "${ignore[@]}" --target slim -t localhost/tensorinit:slim "$root" || true
  # The slim image runs: tensorinit as a plain init, and a model staged from a volume.
  code=0
  v=$("${P[@]}" run --rm --network none localhost/tensorinit:slim tensorinit --version 2>&1) || code=$?
  if [ "$code" = 0 ]; then ok "tensorinit:slim runs: $v"; else not_ok "tensorinit:slim: exit $code: $v"; fi
  code=0
  "${P[@]}" run --rm --network none localhost/tensorinit:slim sh -c 'exit 3' >/dev/null 2>&1 || code=$?
  if [ "$code" = 3 ]; then ok "tensorinit:slim as PID 1 exits with the command's code (3)"; else not_ok "slim: exit $code, wanted 3"; fi
  echo "# sizes: tensorinit (artifact only) $(size localhost/tensorinit), tensorinit:slim $(size localhost/tensorinit:slim)," \
    "artifact tar.gz $(stat -c %s "$work"/dist/*.tar.gz 2>/dev/null | awk '{printf "%.1f MB", $1 / 1e6}')"

  step "examples/images/Dockerfile.volume FROM the built tensorinit (python:3.11-slim made locally)"
  if timed_build "$work/build-volume.log" "podman build -f examples/images/Dockerfile.volume" \
    -f "$root/examples/images/Dockerfile.volume" "${ignore[@]}" -t localhost/minilm-volume "$root"; then
    code=0
    out=$("${P[@]}" run --rm --network none --entrypoint python3 localhost/minilm-volume \
      -c 'import sys; sys.path.insert(0, "/opt/minilm"); import tensorinit_client, minilm, numpy; print("imports ok")' 2>&1) || code=$?
    if [ "$code" = 0 ]; then ok "minilm-volume: the server's imports resolve in the image ($out)"; else not_ok "minilm-volume imports: $out"; fi
    echo "# size: minilm-volume $(size localhost/minilm-volume)"
  fi
fi
