#!/usr/bin/env bash
# all-MiniLM-L6-v2 end to end: fetch the model (fetch_model.sh), show the plan, stage it with
# tensorinit into a /dev/shm arena and hand off to server.py in signal mode, which checks its
# embeddings against the same model run without tensorinit (server.py --check); then start the
# server for real, ask it for an embedding over HTTP, and stop it with SIGTERM.
#
#   TENSORINIT=build/tensorinit bash examples/minilm/run.sh
#   REFERENCE=sentence-transformers PYTHON=/path/to/venv/bin/python bash examples/minilm/run.sh
#
# Needs python3 with numpy; sentence-transformers (torch) too for the reference comparison.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
tensorinit=${TENSORINIT:-$root/build/tensorinit}
python=${PYTHON:-python3}
export MINILM_DIR=${MINILM_DIR:-/var/tmp/tensorinit-minilm/model}
export MINILM_SERVER=$here/server.py
export MINILM_REPORT=${MINILM_REPORT:-/tmp/tensorinit-minilm-report.json}
export PORT=${PORT:-18080}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1   # the reference must not reach for the Hub

bash "$here/fetch_model.sh"
"$tensorinit" plan -f "$here/deployment.yaml"

echo "== check: embeddings from the staged weights vs. the model without tensorinit"
"$tensorinit" run -f "$here/deployment.yaml" -- "$python" "$here/server.py" --check --reference "${REFERENCE:-auto}"

echo "== serve: one request, then SIGTERM"
"$tensorinit" run -f "$here/deployment.yaml" -- "$python" "$here/server.py" --port "$PORT" &
pid=$!
for _ in $(seq 300); do
  "$python" -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$PORT/healthz', timeout=1)" 2>/dev/null && break
  sleep 0.1
done
"$python" - "$PORT" <<'PY'
import json, sys, urllib.request
req = urllib.request.Request("http://127.0.0.1:%s/embed" % sys.argv[1],
                             data=json.dumps({"sentences": ["How fast is a cold start?"]}).encode(),
                             headers={"Content-Type": "application/json"})
emb = json.load(urllib.request.urlopen(req, timeout=30))["embeddings"][0]
print("POST /embed: %d floats, first %s, norm %.6f" % (len(emb), [round(x, 4) for x in emb[:4]], sum(x * x for x in emb) ** 0.5))
PY
kill -TERM "$pid"
code=0; wait "$pid" || code=$?
echo "tensorinit exited $code after SIGTERM (the server's code)"
[ "$code" = 0 ]
echo "report: $MINILM_REPORT"
