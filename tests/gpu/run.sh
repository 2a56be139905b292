#!/usr/bin/env bash
# The cuda target on a real GPU in one prepared call (issue 15 part 5), well inside 8 minutes:
#   1. byte-exact: tensorinit stages a synthesized model to every GPU's HBM (signal handoff, start
#      after-load); the server, examples/cuda-consumer, opens each arena's IPC handle, copies every
#      tensor back and prints its SHA-256, which must equal the source file's bytes;
#   2. no visible device: target cuda exits 69 with one clear line, auto falls back to host;
#   3. one table, every row a ratio to the ceiling (raw pinned cudaMemcpy H2D): tensorinit from
#      the page cache and from disk (page cache dropped) to HBM, the discard pipeline (read and
#      verify, no copy: what the readers alone reach; n/a when the binary has no discard target),
#      and the PyPI peers with a GPU path: safetensors load_file(device="cuda"), Run:ai Model
#      Streamer, fastsafetensors, instanttensor (installed from BIN_DIR/wheels, carried: the
#      machine reaches no registry; a peer that fails prints n/a and why).
#
# usage: tests/gpu/run.sh [--dry-run] [BIN_DIR]
#   BIN_DIR: what tests/gpu/prepare.sh made (stripped tensorinit and tensorinit_cuda_consumer, both
#   linking cudart, libstdc++ and yaml-cpp statically, and wheels/). Without it the script builds
#   them (cmake, ninja, the CUDA toolkit, the Debian packages of the brief).
#   --dry-run: the same steps on a machine without a GPU: tensorinit_cudadouble (the strict CUDA
#   runtime double, from BIN_DIR or build/tests) stands in for tensorinit, byte-exactness is checked
#   on the double's dump of device memory, GPU-only steps (the consumer, the ceiling, the peers'
#   loads) print "skipped (dry run)", and the peers' code is compiled, their wheels listed.
#   GPU_TEST_SIZE (default 8GiB; 64MiB dry), GPU_TEST_TMP (default /tmp/tensorinit-gpu).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dry=0
if [ "${1:-}" = --dry-run ]; then dry=1; shift; fi
work=${GPU_TEST_TMP:-/tmp/tensorinit-gpu}
bin=${1:-}
started=$(date +%s)
if [ $dry = 1 ]; then size=${GPU_TEST_SIZE:-64MiB}; else size=${GPU_TEST_SIZE:-8GiB}; fi
if [ -z "$bin" ]; then
  cmake -S "$root" -B "$root/build-gpu" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  ninja -C "$root/build-gpu" tensorinit $([ $dry = 1 ] && echo tensorinit_cudadouble || echo tensorinit_cuda_consumer)
  bin=$root/build-gpu
fi
bin=$(cd "$bin" && pwd)
find_bin() { local f; for f in "$bin/$1" "$bin/tests/$1" "$bin/examples/$1"; do [ -x "$f" ] && { echo "$f"; return; }; done; true; }
TI=$(find_bin tensorinit)
CONSUMER=$(find_bin tensorinit_cuda_consumer)
if [ $dry = 1 ]; then
  TI=${TENSORINIT_CUDADOUBLE:-$(find_bin tensorinit_cudadouble)}
  [ -x "$TI" ] || { echo "gpu: --dry-run needs tensorinit_cudadouble in $bin or \$TENSORINIT_CUDADOUBLE" >&2; exit 2; }
  export TENSORINIT_CUDA_DOUBLE_DEVICES=${TENSORINIT_CUDA_DOUBLE_DEVICES:-2} TENSORINIT_CUDA_DOUBLE_DUMP=$work/dump
else
  [ -x "$TI" ] && [ -x "$(dirname "$TI")/tensorinit-full" ] && [ -x "$CONSUMER" ] ||
    { echo "gpu: need tensorinit, tensorinit-full (beside it) and tensorinit_cuda_consumer in $bin" >&2; exit 2; }
  command -v nvidia-smi >/dev/null && nvidia-smi -L
fi
PY=python3
fails=0
ok() { echo "ok - $*"; }
not_ok() { echo "not ok - $*"; fails=$((fails + 1)); }
elapsed() { echo "$(( $(date +%s) - started ))s"; }
drop_caches() {  # dry: not on a shared machine; the code path is the same without it
  [ $dry = 1 ] && return 0
  sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || "$PY" "$root/tests/bench/peers.py" drop "$work"/model/*.safetensors
}

rm -rf "$work" && mkdir -p "$work" "$work/dump"
timeout 300 "$TI" synth --size "$size" --shards 4 --seed 11 "$work/model" 2>/dev/null
if [ $dry = 1 ]; then ngpu=$TENSORINIT_CUDA_DOUBLE_DEVICES; else ngpu=$(nvidia-smi -L 2>/dev/null | wc -l); fi
[ "$ngpu" -ge 1 ] || ngpu=1
devices=$(seq -s, 0 $((ngpu - 1)))
echo "gpu: $size model, $ngpu device(s), synthesized at $(elapsed)"

manifest() {  # manifest NAME STAGE_YAML HANDOFF_YAML
  printf 'version: 1\nmodel:\n  name: %s\n  sources: [{type: image, path: "%s"}]\nstage: %s\nhandoff: %s\nreport: %s\n' \
    "$1" "$work/model" "$2" "$3" "$work/$1.report.json" >"$work/$1.yaml"
  echo "$work/$1.yaml"
}
gbps() { "$PY" -c "import json,sys; print(json.load(open(sys.argv[1]))['throughput_gbps'])" "$work/$1.report.json"; }

# 1. Byte-exact on every device (each arena is a full replica; the consumer reads arena 0, so the
#    check runs once per device with that device listed first). Dry: the double's dumps instead.
"$PY" - "$work/model" >"$work/expected.sha" <<'PY'
import hashlib, json, os, struct, sys
d = sys.argv[1]
for f in sorted(os.listdir(d)):
    if not f.endswith(".safetensors"): continue
    with open(os.path.join(d, f), "rb") as fh:
        n = struct.unpack("<Q", fh.read(8))[0]; h = json.loads(fh.read(n)); base = 8 + n
        for k, v in h.items():
            if k == "__metadata__": continue
            b, e = v["data_offsets"]; fh.seek(base + b)
            print(hashlib.sha256(fh.read(e - b)).hexdigest() + "  " + k)
PY
sort -k2 "$work/expected.sha" -o "$work/expected.sha"
if [ $dry = 1 ]; then
  m=$(manifest gpu-exact "{target: cuda, devices: [$devices]}" "{mode: none}")
  if timeout 300 "$TI" load --keep -f "$m" 2>"$work/exact.err" && "$PY" - /dev/shm/tensorinit-gpu-exact.json "$work/dump" >"$work/got.sha" <<'PY'
import hashlib, json, sys
table, dump = json.load(open(sys.argv[1])), sys.argv[2]
arena = open(f"{dump}/cuda0.arena", "rb").read()  # the double dumps each device arena when freed
for t in table["tensors"]:
    print(hashlib.sha256(arena[t["offset"]:t["offset"] + t["bytes"]]).hexdigest() + "  " + t["name"])
PY
  then
    rm -f /dev/shm/tensorinit-gpu-exact*
    sort -k2 "$work/got.sha" | cmp -s - "$work/expected.sha" && ok "dry: every tensor byte-exact in the double's cuda:0 dump ($(wc -l <"$work/expected.sha") tensors)" \
      || not_ok "dry: the double's dump differs from the source"
  else
    not_ok "dry: load to the double"; tail -3 "$work/exact.err"
  fi
else
  for first in $(seq 0 $((ngpu - 1))); do
    order=$(echo "$first,$devices" | tr , '\n' | awk '!seen[$0]++' | paste -sd,)
    m=$(manifest "gpu-exact" "{target: cuda, devices: [$order]}" "{mode: signal, start: after-load, command: [$CONSUMER, --sha256]}")
    if timeout 300 "$TI" run -f "$m" >"$work/got.sha" 2>"$work/exact.err" && sort -k2 "$work/got.sha" | cmp -s - "$work/expected.sha"; then
      ok "every tensor byte-exact in HBM of cuda:$first (devices [$order], $(wc -l <"$work/expected.sha") tensors)"
    else
      not_ok "byte-exact on cuda:$first"; tail -3 "$work/exact.err"
    fi
  done
fi
echo "gpu: byte-exact checks done at $(elapsed)"

# 2. No visible device: target cuda exits 69 with one clear line, auto falls back to host.
m=$(manifest gpu-none "{target: cuda}" "{mode: none}")
code=0
if [ $dry = 1 ]; then TENSORINIT_CUDA_DOUBLE_DEVICES=nodriver timeout 60 "$TI" load -f "$m" 2>"$work/none.err" || code=$?
else CUDA_VISIBLE_DEVICES= timeout 60 "$TI" load -f "$m" 2>"$work/none.err" || code=$?; fi
[ $code = 69 ] && grep -q "stage.target is cuda but CUDA is unusable" "$work/none.err" && ok "no device: exit 69" || not_ok "no device: exit $code"
m=$(manifest gpu-auto "{target: auto}" "{mode: none}")
timeout 120 "$TI" load -f "$m" 2>"$work/auto.err" && grep -q "using cuda" "$work/auto.err" && ok "auto picks cuda" || not_ok "auto did not pick cuda"

# 3. Bandwidth, every row against the ceiling.
bytes=$(du -cb "$work"/model/*.safetensors | tail -1 | cut -f1)
if [ $dry = 1 ]; then pinned="skipped (dry run)"; else pinned=$(timeout 120 "$CONSUMER" --bandwidth 1024); fi
best_of() {  # best_of N NAME STAGE_YAML [cold]: best GB/s of N loads
  local best=0 i got
  for i in $(seq "$1"); do
    [ "${4:-}" = cold ] && drop_caches
    m=$(manifest "$2" "$3" "{mode: none}")
    if timeout 120 "$TI" load -f "$m" 2>>"$work/bw.err"; then got=$(gbps "$2"); best=$("$PY" -c "print('%.2f' % max($best, $got))")
    else not_ok "$2 run $i failed"; tail -2 "$work/bw.err"; fi
  done
  echo "$best"
}
cat "$work"/model/*.safetensors >/dev/null
warm=$(best_of 3 gpu-warm "{target: cuda, devices: [0], direct_io: off, memory_limit: 2GiB}")
cold=$(best_of 2 gpu-cold "{target: cuda, devices: [0], memory_limit: 2GiB}" cold)
cat "$work"/model/*.safetensors >/dev/null
discard="n/a (no discard target in this binary)"
m=$(manifest gpu-discard "{target: discard}" "{mode: none}")
if timeout 120 "$TI" load -f "$m" 2>"$work/discard.err"; then discard=$("$PY" -c "print('%.2f' % $(gbps gpu-discard))"); fi
echo "gpu: tensorinit rows done at $(elapsed)"

# The peers, from the page cache, each in its own interpreter (its clock starts after `import torch`
# and CUDA's start, and stops after torch.cuda.synchronize()).
wheels=$bin/wheels
if [ -d "$wheels" ] && [ $dry = 0 ]; then
  "$PY" -m pip install --quiet --no-index --find-links "$wheels" --no-deps "$wheels"/*.whl 2>"$work/pip.err" ||
    echo "gpu: installing the carried wheels failed: $(tail -1 "$work/pip.err")"
fi
cat >"$work/peer.py" <<'PY'
import os, sys, time
peer, model, nbytes = sys.argv[1], sys.argv[2], int(sys.argv[3])
files = sorted(os.path.join(model, f) for f in os.listdir(model) if f.endswith(".safetensors"))
import torch
torch.cuda.init(); torch.empty(1, device="cuda")
def safetensors_peer():
    from safetensors.torch import load_file
    return [load_file(f, device="cuda:0") for f in files]
def runai_peer():
    from runai_model_streamer import SafetensorsStreamer
    out = {}
    with SafetensorsStreamer() as s:
        s.stream_files(files)
        for name, t in s.get_tensors():
            out[name] = t.to("cuda:0", non_blocking=True)
    return out
def fastsafetensors_peer():
    from fastsafetensors import SafeTensorsFileLoader, SingleGroup
    loader = SafeTensorsFileLoader(SingleGroup(), "cuda:0", nogds=True)
    loader.add_filenames({0: files})
    fb = loader.copy_files_to_device()
    out = {k: fb.get_tensor(k) for k in fb.key_to_rank_lidx.keys()}
    torch.cuda.synchronize()
    fb.close(); loader.close()
    return out
def instanttensor_peer():
    from instanttensor import safe_open
    out = {}
    with safe_open(files, framework="pt", device=0) as f:
        for name, t in f.tensors():
            out[name] = t
    return out
run = {"safetensors": safetensors_peer, "runai": runai_peer, "fastsafetensors": fastsafetensors_peer,
       "instanttensor": instanttensor_peer}[peer]
if os.environ.get("PEER_DRY"):
    sys.exit(0)
t0 = time.perf_counter()
run()
torch.cuda.synchronize()
print("%.2f" % (nbytes / (time.perf_counter() - t0) / 1e9))
PY
declare -A peer
for p in safetensors runai fastsafetensors instanttensor; do
  if [ $dry = 1 ]; then
    "$PY" -m py_compile "$work/peer.py" && peer[$p]="skipped (dry run)" || peer[$p]="n/a (peer.py does not compile)"
    continue
  fi
  if got=$(timeout 150 "$PY" "$work/peer.py" "$p" "$work/model" "$bytes" 2>"$work/peer-$p.err") && [ -n "$got" ]; then
    peer[$p]=$got
  else
    peer[$p]="n/a ($(grep -v '^\s*$' "$work/peer-$p.err" | tail -1 | cut -c1-60))"
  fi
done
echo "gpu: peers done at $(elapsed)"
[ $dry = 1 ] && [ -d "$wheels" ] && echo "gpu: carried wheels: $(cd "$wheels" && ls | paste -sd' ')"

ratio() { "$PY" -c "import sys
try: print('%.2f' % (float(sys.argv[1]) / float(sys.argv[2])))
except ValueError: print('-')" "$1" "$pinned"; }
row() { printf '| %-48s | %-38s | %6s |\n' "$1" "$2" "$(ratio "$2")"; }
echo
echo "$size model ($((bytes / 1048576)) MiB, 4 shards) to cuda:0; GB/s; ratio to the pinned H2D ceiling"
printf '| %-48s | %-38s | %6s |\n|%s|%s|%s|\n' "row" "GB/s" "ratio" "$(printf -- '-%.0s' {1..50})" "$(printf -- '-%.0s' {1..40})" "--------"
row "raw pinned cudaMemcpy H2D, 1 GiB (ceiling)" "$pinned"
row "tensorinit load, page cache -> HBM (best of 3)" "$warm"
row "tensorinit load, disk -> HBM (cold, best of 2)" "$cold"
row "tensorinit discard pipeline (read, verify, drop)" "$discard"
row "safetensors load_file(device=\"cuda\")" "${peer[safetensors]}"
row "Run:ai Model Streamer, then .to(cuda)" "${peer[runai]}"
row "fastsafetensors (nogds)" "${peer[fastsafetensors]}"
row "instanttensor safe_open(device=0)" "${peer[instanttensor]}"
echo
echo "gpu: finished in $(elapsed)"
[ $fails = 0 ] && echo "gpu: all checks passed" || { echo "gpu: $fails check(s) failed"; exit 1; }
