"""A sentence-embedding server for all-MiniLM-L6-v2 whose weights tensorinit stages.

Starts at once (signal mode, start: early), reads the vocabulary while tensorinit loads, then maps
every tensor from the /dev/shm arena through the tensor table as numpy views (no copy) and serves:

    GET  /healthz                       200 once the weights are mapped, 503 before
    POST /embed {"sentences": [...]}    {"embeddings": [[384 floats], ...]}

    tensorinit run -f deployment.yaml                 # the manifest's command starts this server
    tensorinit run -f deployment.yaml -- python3 server.py --check [--reference auto|numpy|sentence-transformers]

--check computes embeddings of a few sentences from the staged weights, compares them with the same
model run without tensorinit, prints the differences and exits 0 (match) or 1:
  numpy                  the same numpy model fed from $TENSORINIT_MODEL_DIR/model.safetensors, read
                         here directly: must agree bit for bit;
  sentence-transformers  the reference implementation (torch) loading the original directory;
                         must agree within 1e-5 (different kernels, same model);
  auto                   numpy, plus sentence-transformers when it is installed.
It also checks that the embeddings mean something (a paraphrase is nearer than an unrelated line).
"""

import signal

# First thing, before any import that starts threads: catch tensorinit's ready signal (SIGUSR1).
# This server learns readiness from $TENSORINIT_SOCKET, but tensorinit still sends the signal once
# the server catches *or blocks* it, and glibc blocks every signal for an instant in each
# pthread_create (numpy's BLAS threads, torch): a SIGUSR1 sent then, still at its default
# action, would kill the server (exit 138) when unblocked.
signal.signal(signal.SIGUSR1, lambda *_: None)

import argparse  # noqa: E402
import http.server  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "clients", "python"))  # in the repository
import numpy as np  # noqa: E402

import minilm  # noqa: E402
import tensorinit_client as tc  # noqa: E402

SENTENCES = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "A man is riding a horse.",
    "The new movie is awesome, isn't it? Très bien!",
    "tensorinit stages the weights before the server needs them",
]


def staged_weights(weights):
    """{name: numpy view into the arena} for every tensor of the table."""
    return {name: weights.numpy(name) for name in weights.names()}


def check(model, model_dir, reference):
    got = model.embed(SENTENCES)
    failures = 0
    source = os.path.join(model_dir, "model.safetensors")
    if reference in ("auto", "numpy"):
        start = time.monotonic()
        want = minilm.MiniLM(minilm.read_safetensors(source), model.tokenizer).embed(SENTENCES)
        diff = float(np.abs(got - want).max())
        ok = diff == 0.0
        failures += not ok
        print("check numpy reference from %s: max |diff| = %g (%s, %.2f s)"
              % (source, diff, "bit-identical" if ok else "MISMATCH", time.monotonic() - start))
    if reference in ("auto", "sentence-transformers"):
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            if reference == "sentence-transformers":
                print("check sentence-transformers: not installed")
                return 1
            print("check sentence-transformers: not installed, skipped")
        else:
            start = time.monotonic()
            want = SentenceTransformer(model_dir, device="cpu").encode(SENTENCES, convert_to_numpy=True)
            diff = float(np.abs(got - want).max())
            cosine = float(min((got * want).sum(1)))
            ok = diff < 1e-5
            failures += not ok
            print("check sentence-transformers reference (torch) from %s: max |diff| = %.3g, min cosine = %.8f (%s, %.2f s)"
                  % (model_dir, diff, cosine, "match" if ok else "MISMATCH", time.monotonic() - start))
    similar, unrelated = float(got[0] @ got[1]), float(got[0] @ got[2])
    ok = similar > unrelated + 0.2
    failures += not ok
    print("check meaning: cos(eating food, eating bread) = %.3f > cos(eating food, riding a horse) = %.3f (%s)"
          % (similar, unrelated, "ok" if ok else "WRONG"))
    return 1 if failures else 0


def serve(state, host, port):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path != "/healthz":
                return self._reply(404, {"error": "not found"})
            if state.get("model") is None:
                return self._reply(503, {"status": state.get("error") or "loading"})
            self._reply(200, {"status": "ready", "tensors": state["tensors"]})

        def do_POST(self):
            if self.path != "/embed":
                return self._reply(404, {"error": "not found"})
            if state.get("model") is None:
                return self._reply(503, {"status": "loading"})
            try:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                sentences = body["sentences"]
                if not isinstance(sentences, list) or not sentences or not all(isinstance(s, str) for s in sentences):
                    raise ValueError("sentences: a non-empty list of strings")
            except (ValueError, KeyError, TypeError) as e:
                return self._reply(400, {"error": str(e)})
            self._reply(200, {"embeddings": state["model"].embed(sentences).tolist()})

        def _reply(self, code, body):
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer((host, port), Handler)
    print("minilm: listening on %s:%d" % (host, port), file=sys.stderr, flush=True)
    return server


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1", help="0.0.0.0 in a container")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--reference", default="auto", choices=["auto", "numpy", "sentence-transformers"])
    args = parser.parse_args()

    model_dir = os.environ["TENSORINIT_MODEL_DIR"]
    tokenizer = minilm.model_dir_tokenizer(model_dir)  # while tensorinit loads (start: early)
    state = {}
    server = None if args.check else serve(state, args.host, args.port)
    if server is not None:  # answer /healthz with 503 while loading: the startup probe's view
        import threading
        threading.Thread(target=server.serve_forever, daemon=True).start()

    start = time.monotonic()
    try:
        weights = tc.wait_and_open()
    except tc.TensorinitError as e:
        print("minilm: %s" % e, file=sys.stderr)
        return e.code
    model = minilm.MiniLM(staged_weights(weights), tokenizer)
    print("minilm: %d tensors mapped from %s (%.3f s after start)"
          % (len(weights.names()), weights.table["arenas"][0]["path"], time.monotonic() - start),
          file=sys.stderr, flush=True)
    if args.check:
        return check(model, model_dir, args.reference)
    state["tensors"] = len(weights.names())
    state["model"] = model
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    # tensorinit forwards SIGTERM on shutdown: exit 0 at once (nothing to flush).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    sys.exit(main())
