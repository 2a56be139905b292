#!/usr/bin/env bash
# The container artifact the way a container runtime runs it, without Docker: package tensorinit
# (scripts/package.sh), assemble a root filesystem that holds only glibc besides the artifact and
# a stand-in server, and run `tensorinit run -f MANIFEST -- server` as PID 1 in new PID and mount
# namespaces (unshare + chroot), with the model on a read-only bind-mounted "volume" at
# /mnt/models and /dev/shm a 64 MiB tmpfs (Docker's default). Checks: the weights are staged byte
# for byte, the server gets the TENSORINIT_* variables, orphans are reaped, SIGTERM reaches the
# server and its exit code comes back; a /dev/shm too small fails with 74 and no server; the
# shipped libcurl closure loads and fetches over HTTP in that root filesystem, and the same load
# from an http source (loopback server) works there, tensorinit dlopening the shipped libcurl.
# Needs root (CI).
source "$(dirname "$0")/lib.sh"
root=$(cd "$TESTS_DIR/.." && pwd)
T=$TEST_TMP
[ "$(id -u)" = 0 ] || { echo "needs root (unshare, mount, chroot)"; exit 1; }
for tool in cc patchelf unshare chroot; do
  command -v $tool >/dev/null || { echo "needs $tool (Debian: apt-get install gcc patchelf util-linux coreutils)"; exit 1; }
done

# --- the artifact --------------------------------------------------------------------------------
if TENSORINIT="$TENSORINIT" DIST="$T/dist" GZIP_LEVEL=1 bash "$root/scripts/package.sh" >"$T/package.log" 2>&1; then
  ok "scripts/package.sh: $(grep -o 'highest: GLIBC_[0-9.]*' "$T/package.log"), closure resolves from lib/tensorinit"
else
  not_ok "scripts/package.sh failed"; sed 's/^/    /' "$T/package.log" | tail -5; finish; exit 1
fi
artifact=$(ls -d "$T"/dist/tensorinit-*-linux-*/)
tar -tzf "$T"/dist/tensorinit-*.tar.gz >"$T/tarball.list"
check "the tarball holds bin/tensorinit" grep -q '/bin/tensorinit$' "$T/tarball.list"
check "the tarball holds bin/tensorinit-full" grep -q '/bin/tensorinit-full$' "$T/tarball.list"
check "the tarball holds lib/tensorinit/libcurl.so.4" grep -q '/lib/tensorinit/libcurl.so.4$' "$T/tarball.list"

cc -O2 -o "$T/server" "$TESTS_DIR/integration/rootfs/server.c"
cc -O2 -o "$T/curlcheck" "$TESTS_DIR/integration/rootfs/curlcheck.c"

# --- the root filesystem: the artifact, two test programs, and the glibc files they name --------
# (bin/tensorinit, the first stage, is static: it names none)
R=$T/rootfs
mkdir -p "$R"/{usr/local,etc/tensorinit,mnt/models,dev/shm,proc,out,tmp,run}
cp -a "$artifact". "$R/usr/local/"
cp "$T/server" "$T/curlcheck" "$R/usr/local/bin/"
glibc_files() {  # every glibc file (by path, as ldd resolves it) that the given objects need
  for f in "$@"; do
    ldd "$f" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}'
  done | sort -u | while read -r path; do
    # the shipped libraries resolve among themselves; only glibc comes from the host
    [[ $(readlink -f "$path") == "$(readlink -f "$R")"/* ]] || echo "$path"
  done
}
for path in $(glibc_files "$R/usr/local/bin/tensorinit-full" "$R/usr/local/bin/server" "$R/usr/local/bin/curlcheck" \
                          "$R"/usr/local/lib/tensorinit/*); do
  mkdir -p "$R$(dirname "$path")"
  cp -L "$path" "$R$path"
done
foreign=$(cd "$R" && find . -type f ! -path './usr/local/*' | sed 's|^\./||' | grep -vE '(^|/)(libc\.so\.6|libm\.so\.6|libresolv\.so\.2|ld-linux-x86-64\.so\.2)$' || true)
check "the root filesystem holds only glibc outside /usr/local ($(cd "$R" && find . -type f ! -path './usr/local/*' | sed 's|^\./||' | xargs))" \
  test -z "$foreign"
check "no shell in the root filesystem" not test -e "$R/bin/sh"

# --- the volume and the manifest -------------------------------------------------------------------
"$TENSORINIT" synth --size 6MiB --shards 2 --seed 7 "$T/volume/tiny" >/dev/null 2>&1
cat >"$R/etc/tensorinit/deployment.yaml" <<'EOF'
version: 1
model:
  name: ctr
  sources:
    - {type: image, path: /models/ctr}          # not baked in: falls back to the volume
    - {type: volume, path: /mnt/models/tiny}
stage:
  target: host
handoff:
  mode: exec
  command: [/usr/local/bin/server, /dev/shm/tensorinit-ctr-0, /out]
  grace: 2s
report: /run/report.json
EOF

# container SHM_SIZE [ARGS...]: runs ARGS (default: tensorinit as the ENTRYPOINT) as PID 1 of new
# PID and mount namespaces, chrooted into $R with what a runtime mounts: /proc, /dev/{null,zero,
# urandom}, /dev/shm (tmpfs of SHM_SIZE), the volume read-only, /out for the results. A clean
# environment, default signal dispositions (a background job starts with INT and QUIT ignored).
# It execs unshare: call it in a subshell, `(container ...)` or `container ... &` (then $! is
# unshare, and its child PID 1).
container() {
  local shm=$1; shift
  [ $# -gt 0 ] || set -- /usr/local/bin/tensorinit run -f /etc/tensorinit/deployment.yaml
  exec env --default-signal unshare --fork --pid --mount --propagation private -- bash -c '
    set -e; R=$1 V=$2 O=$3 shm=$4 chroot=$5; shift 5
    mount -t proc proc "$R/proc"
    mount -t tmpfs -o "size=$shm,mode=1777" shm "$R/dev/shm"
    mount --bind "$V" "$R/mnt/models" && mount -o remount,bind,ro "$R/mnt/models"
    mount --bind "$O" "$R/out"
    for d in null zero urandom; do touch "$R/dev/$d"; mount --bind "/dev/$d" "$R/dev/$d"; done
    exec env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/ "$chroot" "$R" "$@"' \
    _ "$R" "$T/volume" "$T/out" "$shm" "$(command -v chroot)" "$@"
}
await() { local i; for ((i = 0; i < 1000; i++)); do [ -e "$1" ] && return 0; sleep 0.01; done; return 1; }

# --- 1. load, handoff, env, reaping, SIGTERM, exit code --------------------------------------------
init=""
container_init() {  # the container's PID 1, as seen from here: the child of unshare ($ns)
  read -r init _ <"/proc/$ns/task/$ns/children" || true  # the file has no final newline
}
trap '[ -n "$init" ] && kill -KILL "$init" 2>/dev/null; [ -n "${web:-}" ] && kill "$web" 2>/dev/null; true' EXIT

# serve_and_stop MANIFEST SOURCE_TYPE: PID 1 stages and starts the server; once it is ready,
# SIGTERM to PID 1; then what the server saw and copied to /out is checked.
serve_and_stop() {
  local manifest=$1 type=$2 start code elapsed_ms
  rm -rf "$T/out" && mkdir -p "$T/out"
  start=$(date +%s%N)
  container 64m /usr/local/bin/tensorinit run -f "$manifest" 2>"$T/stderr" &
  ns=$!
  if await "$T/out/ready"; then
    container_init
    check "[$type] PID 1 of the container is tensorinit" grep -qx tensorinit "/proc/$init/comm"
    kill -TERM "$init"
  else
    not_ok "[$type] the server did not get ready"; sed 's/^/    /' "$T/stderr" | tail -5
    container_init; [ -n "$init" ] && kill -KILL "$init"
  fi
  code=0; wait "$ns" || code=$?
  init=""
  elapsed_ms=$((($(date +%s%N) - start) / 1000000))
  if [ "$code" = 42 ]; then ok "[$type] SIGTERM to PID 1 reached the server; its exit code 42 came back (${elapsed_ms} ms in all)"
  else not_ok "[$type] exit $code after SIGTERM, wanted 42 (the server's)"; sed 's/^/    /' "$T/stderr" | tail -5; fi
  check "[$type] the server wrote got-term (it handled the forwarded SIGTERM)" test -e "$T/out/got-term"
  check "[$type] the server's parent is PID 1" grep -qx 'ppid=1' "$T/out/env"
  check "[$type] TENSORINIT_SOURCE=$type" grep -qx "TENSORINIT_SOURCE=$type" "$T/out/env"
  check "[$type] 20 orphans re-parented to PID 1 were reaped (no zombies)" grep -qx 0 "$T/out/zombies"
  grep -q 'tensorinit: staged' "$T/stderr" && ok "[$type] stderr: $(grep -o 'staged .*' "$T/stderr" | head -1 | cut -c1-80)" \
    || not_ok "[$type] no staging summary on stderr"
  # The table names in-container paths: point them at the copies the server made in /out.
  if python3 - "$T/out/table.json" "$T/out/arena.bin" "$T/table.json" "$type" <<'PY'
import json, sys
table = json.load(open(sys.argv[1]))
assert table["source"]["type"] == sys.argv[4], table["source"]
assert [a["path"] for a in table["arenas"]] == ["/dev/shm/tensorinit-ctr-0"], table["arenas"]
table["arenas"][0]["path"] = sys.argv[2]
json.dump(table, open(sys.argv[3], "w"))
PY
  then
    if TENSORINIT_MODEL_DIR="$T/volume/tiny" TENSORINIT_SOURCE=$type $VERIFY --table "$T/table.json" >"$T/verify" 2>&1; then
      ok "[$type] the arena PID 1 staged in the container: $(cat "$T/verify")"
    else not_ok "[$type] arena contents: $(cat "$T/verify")"; fi
  else
    not_ok "[$type] the tensor table the server saw is not as expected"
  fi
}

serve_and_stop /etc/tensorinit/deployment.yaml volume
check "[volume] TENSORINIT_MODEL_DIR=/mnt/models/tiny" grep -qx 'TENSORINIT_MODEL_DIR=/mnt/models/tiny' "$T/out/env"
check "[volume] the report was written in the container (ok: true)" grep -q '"ok": *true' "$R/run/report.json"

# --- 2. /dev/shm too small: exit 74 naming --shm-size, no server ------------------------------------
rm -rf "$T/out" && mkdir -p "$T/out"
code=0; (container 1m) 2>"$T/stderr" || code=$?
if [ "$code" = 74 ]; then ok "a 1 MiB /dev/shm for a 6 MiB model: exit 74"; else
  not_ok "small /dev/shm: exit $code, wanted 74"; sed 's/^/    /' "$T/stderr" | tail -3; fi
check "the error names --shm-size" grep -q -- '--shm-size' "$T/stderr"
check "no server was started" not test -e "$T/out/env"

# --- 3. the shipped libcurl closure, in the glibc-only root filesystem ----------------------------
# A loopback HTTP server with Range support (tensorinit reads remote files in parallel ranges),
# serving the volume's model; the container shares this network namespace.
head -c 300000 /dev/urandom >"$T/volume/blob"
python3 - "$T/volume" "$T/port" <<'PY' &
import http.server, os, re, sys

class Ranges(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _serve(self, body):
        path = os.path.join(sys.argv[1], self.path.split("?")[0].lstrip("/"))
        if not os.path.isfile(path):
            return self.send_error(404)
        size = os.path.getsize(path)
        begin, end = 0, size - 1
        ranged = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        if ranged:
            begin, end = int(ranged[1]), min(int(ranged[2] or size - 1), size - 1)
            if begin > end:
                return self.send_error(416)
            self.send_response(206)
            self.send_header("Content-Range", "bytes %d-%d/%d" % (begin, end, size))
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(end - begin + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        if body:
            with open(path, "rb") as f:
                f.seek(begin)
                self.wfile.write(f.read(end - begin + 1))

    def do_GET(self):
        self._serve(True)

    def do_HEAD(self):
        self._serve(False)

server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Ranges)
with open(sys.argv[2] + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(sys.argv[2] + ".tmp", sys.argv[2])
server.serve_forever()
PY
web=$!
if await "$T/port"; then
  port=$(cat "$T/port")
  code=0
  (container 1m /usr/local/bin/curlcheck /usr/local/lib/tensorinit/libcurl.so.4 \
    "http://127.0.0.1:$port/blob") >"$T/fetched" 2>"$T/stderr" || code=$?
  if [ "$code" = 0 ] && cmp -s "$T/fetched" "$T/volume/blob"; then
    ok "shipped libcurl loads and fetches 300000 bytes in the root filesystem ($(head -1 "$T/stderr" | cut -d' ' -f1-2))"
  else
    not_ok "shipped libcurl in the root filesystem: exit $code"; sed 's/^/    /' "$T/stderr" | tail -3
  fi
  # tensorinit itself: an http source makes it dlopen the shipped libcurl (found through
  # /proc/self/exe/../lib/tensorinit: the root filesystem has no other).
  sed -e "s|{type: volume, path: /mnt/models/tiny}|{type: http, url: \"http://127.0.0.1:$port/tiny/\"}|" \
    "$R/etc/tensorinit/deployment.yaml" >"$R/etc/tensorinit/remote.yaml"
  serve_and_stop /etc/tensorinit/remote.yaml http
  # Without the shipped closure there is no libcurl at all in this root filesystem.
  mv "$R/usr/local/lib/tensorinit" "$R/usr/local/lib/tensorinit.off"
  code=0; (container 1m /usr/local/bin/tensorinit plan -f /etc/tensorinit/remote.yaml) >/dev/null 2>"$T/stderr" || code=$?
  mv "$R/usr/local/lib/tensorinit.off" "$R/usr/local/lib/tensorinit"
  if [ "$code" != 0 ] && grep -q 'libcurl' "$T/stderr"; then ok "[http] without lib/tensorinit: exit $code, the error names libcurl"
  else not_ok "[http] without lib/tensorinit: exit $code"; sed 's/^/    /' "$T/stderr" | tail -3; fi
else
  not_ok "the loopback HTTP server did not start"
fi
kill "$web" 2>/dev/null || true; wait "$web" 2>/dev/null || true; web=""
finish
