#!/usr/bin/env bash
# Makes what tests/gpu/run.sh carries to a GPU machine (which reaches no registry), here:
#   OUT/tensorinit, OUT/tensorinit-full,           built in BUILD_DIR (default build/, the usual
#   OUT/tensorinit_cuda_consumer                   RelWithDebInfo build: -O2), stripped (2.5 MiB
#                                                  static first stage + 9 MiB; cudart, libstdc++,
#                                                  yaml-cpp linked statically)
#   OUT/tensorinit_cudadouble                      for `run.sh --dry-run OUT` on this machine
#   OUT/wheels/                                    the GPU peers for the machine's Python 3.12:
#                                                  runai-model-streamer, fastsafetensors,
#                                                  instanttensor (+ typer, humanize), about 10 MiB
# usage: tests/gpu/prepare.sh [OUT]   (default build-gpu-carry: ignored by git, so name it in the
# device call's carry). Needs the CUDA toolkit (cmake finds /usr/local/cuda) and pip.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=$(mkdir -p "${1:-$root/build-gpu-carry}" && cd "${1:-$root/build-gpu-carry}" && pwd)
build=${BUILD_DIR:-$root/build}
BUILD_DIR=$build NINJA_TARGETS="tensorinit tensorinit_cuda_consumer tensorinit_cudadouble" \
  nice bash "$root/scripts/build.sh" >/dev/null
for b in tensorinit tensorinit-full tests/tensorinit_cudadouble tensorinit_cuda_consumer; do
  strip -o "$out/$(basename "$b")" "$build/$b"
done
mkdir -p "$out/wheels"
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux2014_x86_64 \
  -d "$out/wheels" runai-model-streamer fastsafetensors instanttensor typer humanize
du -sh "$out" "$out"/* | sed 's/^/prepare: /'
total=$(du -sb "$out" | cut -f1)
[ "$total" -lt $((60 << 20)) ] || { echo "prepare: $out is $((total >> 20)) MiB; the device call carries at most 64 MiB" >&2; exit 1; }
echo "prepare: on the GPU machine: carry [${out#"$root"/}], timeout_s 540: bash tests/gpu/run.sh ${out#"$root"/}"
