#!/usr/bin/env bash
# The cuda target on a real GPU, in one run (well inside 10 minutes at the default size):
#   1. tensorinit stages a synthesized model to every GPU's HBM (signal handoff, start after-load);
#      the server is examples/cuda-consumer, which opens each arena's IPC handle, copies every
#      tensor back and prints its SHA-256; each must equal the source file's bytes;
#   2. exit 69 / auto fallback are checked where the binary runs without a device (CUDA_VISIBLE_DEVICES=);
#   3. bandwidth, same run, same file: raw pinned cudaMemcpy (the ceiling), tensorinit page cache
#      -> HBM, and safetensors.torch.load_file(device="cuda") where python3 has torch + safetensors.
# Prints a table of GB/s and ratios to the pinned copy.
#
# usage: tests/gpu/run.sh [BIN_DIR]
#   BIN_DIR holds tensorinit and tensorinit_cuda_consumer built elsewhere and carried here (both
#   link cudart, libstdc++ and yaml-cpp statically: only glibc and the NVIDIA driver are needed).
#   Without it the script builds them (needs cmake, ninja, the CUDA toolkit and the Debian
#   packages of the brief). GPU_TEST_SIZE (default 8GiB), GPU_TEST_TMP (default /tmp/tensorinit-gpu).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
size=${GPU_TEST_SIZE:-8GiB}
work=${GPU_TEST_TMP:-/tmp/tensorinit-gpu}
bin=${1:-}
if [ -z "$bin" ]; then
  cmake -S "$root" -B "$root/build-gpu" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  ninja -C "$root/build-gpu" tensorinit tensorinit_cuda_consumer
  bin=$root/build-gpu
fi
TI=$bin/tensorinit
CONSUMER=$(ls "$bin/tensorinit_cuda_consumer" "$bin/examples/tensorinit_cuda_consumer" 2>/dev/null | head -1)
[ -x "$TI" ] && [ -x "$CONSUMER" ] || { echo "gpu: need tensorinit and tensorinit_cuda_consumer in $bin" >&2; exit 2; }
command -v nvidia-smi >/dev/null && nvidia-smi -L
fails=0
ok() { echo "ok - $*"; }
not_ok() { echo "not ok - $*"; fails=$((fails + 1)); }

rm -rf "$work" && mkdir -p "$work"
timeout 300 "$TI" synth --size "$size" --shards 4 --seed 11 "$work/model" 2>/dev/null
ngpu=$(nvidia-smi -L 2>/dev/null | wc -l); [ "$ngpu" -ge 1 ] || ngpu=1
devices=$(seq -s, 0 $((ngpu - 1)))

manifest() {  # manifest NAME STAGE_YAML HANDOFF_YAML
  printf 'version: 1\nmodel:\n  name: %s\n  sources: [{type: image, path: "%s"}]\nstage: %s\nhandoff: %s\nreport: %s\n' \
    "$1" "$work/model" "$2" "$3" "$work/$1.report.json" >"$work/$1.yaml"
  echo "$work/$1.yaml"
}

# 1. Byte-exact on every device (each arena is a full replica; the consumer reads arena 0, so the
#    check runs once per device with that device listed first).
python3 - "$work/model" >"$work/expected.sha" <<'PY'
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
for first in $(seq 0 $((ngpu - 1))); do
  order=$(echo "$first,$devices" | tr , '\n' | awk '!seen[$0]++' | paste -sd,)
  m=$(manifest "gpu-exact" "{target: cuda, devices: [$order]}" "{mode: signal, start: after-load, command: [$CONSUMER, --sha256]}")
  if timeout 300 "$TI" run -f "$m" >"$work/got.sha" 2>"$work/exact.err" && sort -k2 "$work/got.sha" | cmp -s - "$work/expected.sha"; then
    ok "every tensor byte-exact in HBM of cuda:$first (devices [$order], $(wc -l <"$work/expected.sha") tensors)"
  else
    not_ok "byte-exact on cuda:$first"; tail -3 "$work/exact.err"
  fi
done

# 2. No visible device: target cuda exits 69 with one clear line, auto falls back to host.
m=$(manifest gpu-none "{target: cuda}" "{mode: none}")
code=0; CUDA_VISIBLE_DEVICES= timeout 60 "$TI" load -f "$m" 2>"$work/none.err" || code=$?
[ $code = 69 ] && grep -q "stage.target is cuda but CUDA is unusable" "$work/none.err" && ok "no device: exit 69" || not_ok "no device: exit $code"
m=$(manifest gpu-auto "{target: auto}" "{mode: none}")
timeout 120 "$TI" load -f "$m" 2>"$work/auto.err" && grep -q "using cuda" "$work/auto.err" && ok "auto picks cuda" || not_ok "auto did not pick cuda"

# 3. Bandwidth, from the page cache (files read once first).
cat "$work"/model/*.safetensors >/dev/null
bytes=$(du -cb "$work"/model/*.safetensors | tail -1 | cut -f1)
pinned=$(timeout 120 "$CONSUMER" --bandwidth 1024)
best=0
for i in 1 2 3; do
  m=$(manifest gpu-bw "{target: cuda, devices: [0], direct_io: off, memory_limit: 2GiB}" "{mode: none}")
  timeout 120 "$TI" load -f "$m" 2>>"$work/bw.err" || not_ok "bandwidth run $i failed"
  got=$(python3 -c "import json; print(json.load(open('$work/gpu-bw.report.json'))['throughput_gbps'])")
  best=$(python3 -c "print(max($best, $got))")
done
torch_gbps=n/a
if python3 -c "import torch, safetensors" 2>/dev/null; then
  torch_gbps=$(timeout 300 python3 - "$work/model" "$bytes" <<'PY'
import os, sys, time, torch
from safetensors.torch import load_file
torch.cuda.init(); torch.empty(1, device="cuda")
files = sorted(os.path.join(sys.argv[1], f) for f in os.listdir(sys.argv[1]) if f.endswith(".safetensors"))
t0 = time.perf_counter()
tensors = [load_file(f, device="cuda") for f in files]
torch.cuda.synchronize()
print("%.2f" % (int(sys.argv[2]) / (time.perf_counter() - t0) / 1e9))
PY
)
fi
ratio() { python3 -c "import sys; a,b=sys.argv[1:]; print('%.2f' % (float(a)/float(b)) if a != 'n/a' else 'n/a')" "$1" "$pinned"; }
echo
printf '%-52s %8s %8s\n' "$size model, page cache -> HBM (cuda:0)" "GB/s" "ratio"
printf '%-52s %8s %8s\n' "raw pinned cudaMemcpy H2D, 1 GiB (ceiling)" "$pinned" "1.00"
printf '%-52s %8s %8s\n' "tensorinit load, target cuda (best of 3)" "$best" "$(ratio "$best")"
printf '%-52s %8s %8s\n' "safetensors load_file(device=\"cuda\")" "$torch_gbps" "$(ratio "$torch_gbps")"
echo
[ $fails = 0 ] && echo "gpu: all checks passed" || { echo "gpu: $fails check(s) failed"; exit 1; }
