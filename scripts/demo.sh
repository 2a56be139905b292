#!/usr/bin/env bash
# The main job end to end on built-in defaults: build, synthesize a model (DEMO_SIZE, default
# 1GiB, bf16, 2 shards), drop it from the page cache (as root), stage it with tensorinit and hand
# off to a server that verifies every tensor byte for byte. Prints the report.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/deps.sh
NINJA_TARGETS=tensorinit bash scripts/build.sh
export DEMO_DIR=${DEMO_DIR:-/var/tmp/tensorinit-demo}
export DEMO_CHECKER=$root/tests/tools/verify_table.py
if [ ! -f "$DEMO_DIR/model/model.safetensors.index.json" ]; then
  ./build/tensorinit synth --size "${DEMO_SIZE:-1GiB}" --shards 2 "$DEMO_DIR/model"
fi
if [ "$(id -u)" = 0 ]; then sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true; fi
./build/tensorinit plan -f examples/demo/deployment.yaml
./build/tensorinit run -f examples/demo/deployment.yaml
echo "report ($DEMO_DIR/report.json):"
cat "$DEMO_DIR/report.json"
