#!/usr/bin/env bash
# tensorinit under a real container engine (podman), as users run it. One command, as root:
#
#   bash tests/podman/run.sh [all|setup|runtime|build]      (default: all)
#
#   setup    installs podman, runc and debootstrap when missing (apt-get: the only packages this
#            script installs), configures podman for this VM, and makes the base images locally:
#            no registry is reachable, so `debian:12` is a debootstrap of bookworm (from the Debian
#            mirror apt already uses) imported with `podman import`, cached in $PODMAN_WORK.
#   runtime  packages build/tensorinit (scripts/package.sh), builds test images whose ENTRYPOINT is
#            ["tensorinit", "run", "-f", "/etc/tensorinit/deployment.yaml", "--"], and checks them:
#            weights on a read-only volume and baked in, every tensor compared byte for byte inside
#            the container; --shm-size too small; podman stop / kill; --read-only with --user;
#            two containers sharing IPC with one model name.
#   build    `podman build -f container/Dockerfile` for real (CUDA_VERSION empty: NVIDIA's
#            repository is unreachable), then examples/images/Dockerfile.volume FROM it; sizes.
#
# Facts found on these machines (Debian 12 VM, podman 4.3):
# - The VM's cgroups are v1/hybrid: the default runtime crun refuses ("cgroups in hybrid mode not
#   supported"); runc (Debian package) works: podman --runtime runc.
# - Podman's default ulimits exceed this VM's hard limit ("setrlimit RLIMIT_NOFILE: Operation not
#   permitted"): /etc/containers/containers.conf needs default_ulimits = [] and
#   cgroup_manager = "cgroupfs" (no systemd here).
#
# Environment: TENSORINIT (default build/tensorinit), PODMAN_WORK (default /var/tmp/tensorinit-podman:
# base-image cache, artifact, model), KEEP=1 keeps the test images.
# Prints "ok - ..." / "not ok - ..." lines and "N passed, N failed"; exit 0 when all passed.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
here=$root/tests/podman
work=${PODMAN_WORK:-/var/tmp/tensorinit-podman}
tensorinit=${TENSORINIT:-$root/build/tensorinit}
what=${1:-all}
P=(podman --runtime runc --cgroup-manager cgroupfs)
passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok - $*"; }
not_ok() { failed=$((failed + 1)); echo "not ok - $*"; }
die() { echo "tests/podman/run.sh: $*" >&2; exit 1; }
step() { echo "# $* ($(date -u +%T))"; }
[ "$(id -u)" = 0 ] || die "needs root (podman runs containers here as root)"
mkdir -p "$work"

setup() {
  local missing=()
  for tool in podman:podman runc:runc debootstrap:debootstrap; do
    command -v "${tool%%:*}" >/dev/null || missing+=("${tool#*:}")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    step "apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  local conf=/etc/containers/containers.conf
  if ! grep -qs '^default_ulimits *= *\[\]' "$conf"; then
    [ -e "$conf" ] && die "$conf exists without default_ulimits = []: add it under [containers] (see this script's header)"
    mkdir -p /etc/containers
    cat >"$conf" <<'EOF'
# Written by tensorinit's tests/podman/run.sh: podman's default ulimits exceed this VM's hard
# limit, and there is no systemd to manage cgroups (v1/hybrid here; crun refuses them, runc works).
[containers]
default_ulimits = []

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "runc"
EOF
  fi
  # debian:12 from the Debian mirror apt uses, once; tagged as Docker Hub's names so that
  # `FROM debian:12` finds it locally (nothing is pulled: no registry is reachable).
  if ! "${P[@]}" image exists docker.io/library/debian:12; then
    if [ ! -s "$work/debian12.tar" ]; then
      local mirror
      mirror=$(awk '/^URIs:/ {print $2; exit} /^deb / {print $2; exit}' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null | head -1)
      step "debootstrap bookworm from ${mirror:-http://deb.debian.org/debian}"
      rm -rf "$work/debian12"
      nice -n 19 debootstrap --variant=minbase bookworm "$work/debian12" "${mirror:-http://deb.debian.org/debian}" >"$work/debootstrap.log" 2>&1 ||
        die "debootstrap failed: $(tail -3 "$work/debootstrap.log")"
      rm -rf "$work/debian12/var/cache/apt/archives/"*.deb "$work/debian12/var/lib/apt/lists/"*
      tar -C "$work/debian12" -cf "$work/debian12.tar.part" . && mv "$work/debian12.tar.part" "$work/debian12.tar"
      rm -rf "$work/debian12"
    fi
    "${P[@]}" import --quiet "$work/debian12.tar" docker.io/library/debian:12 >/dev/null
    "${P[@]}" tag docker.io/library/debian:12 docker.io/library/debian:12-slim
  fi
  # python:3.11-slim stand-in (Debian 12's python3 is 3.11; numpy preinstalled so the examples'
  # `pip install numpy` is satisfied offline; pip allowed to install system-wide as in the real one).
  if ! "${P[@]}" image exists docker.io/library/python:3.11-slim; then
    step "python:3.11-slim stand-in"
    printf '%s\n' 'FROM docker.io/library/debian:12' \
      'RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends python3 python3-pip python3-numpy >/dev/null && rm -rf /var/lib/apt/lists/* /usr/lib/python3.11/EXTERNALLY-MANAGED && ln -s python3 /usr/bin/python' \
      >"$work/Containerfile.python"
    "${P[@]}" build --quiet --network host -f "$work/Containerfile.python" -t docker.io/library/python:3.11-slim "$work" >/dev/null
  fi
  ok "podman $(podman --version | awk '{print $3}') with runc; debian:12 and python:3.11-slim made locally"
}

# wait_for FILE PATTERN: until a line of FILE matches (the container's server writes it), 300 s at most.
wait_for() {
  local i
  for ((i = 0; i < 3000; i++)); do
    grep -q -- "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

runtime() {
  source "$here/runtime.sh"
}

build() {
  source "$here/build.sh"
}

start=$(date +%s)
case $what in
  setup) setup ;;
  runtime) setup && runtime ;;
  build) setup && build ;;
  all) setup && runtime && build ;;
  *) die "usage: $0 [all|setup|runtime|build]" ;;
esac
echo "# took $(($(date +%s) - start)) s"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
