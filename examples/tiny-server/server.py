"""A tiny inference-server stand-in: starts at once, serves HTTP while tensorinit stages the
weights, and answers with a computation over them (the sum of each tensor) once they are ready.

    GET /healthz   200 "ready" once the weights are mapped, 503 "loading" before
    GET /          {"tensors": N, "sums": {name: sum, ...}}   (503 while loading)

    tensorinit run -f deployment.yaml -- python3 server.py [--port 8000]
    python3 server.py --check MODEL.safetensors   # compare every staged tensor's bytes, exit 0/1

Uses examples/clients/python/tensorinit_client.py (put it next to this file or on PYTHONPATH).
"""

import argparse
import http.server
import json
import os
import struct
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "clients", "python"))
import tensorinit_client as tc  # noqa: E402

_STRUCT = {"F32": "f", "F64": "d", "F16": "e", "I8": "b", "U8": "B", "I16": "h", "U16": "H",
           "I32": "i", "U32": "I", "I64": "q", "U64": "Q", "BOOL": "?"}


def tensor_sum(weights, name, dtype):
    """Sum of one tensor, as a float: torch or numpy when present, else the standard library."""
    if tc.torch is not None and dtype in ("F32", "F16", "BF16", "F64"):
        return float(weights.torch(name).double().sum())
    raw = weights.raw(name)
    if dtype == "BF16":  # the high half of an F32
        return float(sum(struct.unpack("<f", b"\0\0" + bytes(raw[i:i + 2]))[0] for i in range(0, len(raw), 2)))
    if tc.numpy is not None and dtype in _STRUCT:
        return float(weights.numpy(name).astype("float64").sum())
    if dtype in _STRUCT:
        return float(sum(v[0] for v in struct.iter_unpack("<" + _STRUCT[dtype], raw)))
    return float(sum(raw))  # F8: bytes


def read_safetensors(path):
    """{name: bytes} of a safetensors file (the format: u64 header size, JSON header, data)."""
    with open(path, "rb") as f:
        size = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(size))
        data = f.read()
    return {k: data[v["data_offsets"][0]:v["data_offsets"][1]] for k, v in header.items() if k != "__metadata__"}


class State:
    weights = None
    sums = None
    error = None


def load(state):
    try:
        weights = tc.wait_and_open()
        dtypes = {t["name"]: t["dtype"] for t in weights.table["tensors"]}
        state.sums = {name: tensor_sum(weights, name, dtypes[name]) for name in weights.names()}
        state.weights = weights
    except tc.TensorinitError as e:
        state.error = str(e)
        print("server: %s" % e, file=sys.stderr)


def serve(state, port):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if state.weights is None:
                self._reply(503, {"status": "loading" if state.error is None else state.error})
            elif self.path == "/healthz":
                self._reply(200, {"status": "ready"})
            else:
                self._reply(200, {"tensors": len(state.sums), "sums": state.sums})

        def _reply(self, code, body):
            data = json.dumps(body, sort_keys=True).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):  # stdout belongs to the answer; keep logs quiet
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print("server: listening on 127.0.0.1:%d" % server.server_address[1], file=sys.stderr, flush=True)
    server.serve_forever()


def check(expected_path):
    """Waits for the weights and compares every staged tensor's bytes with the original file."""
    weights = tc.wait_and_open(timeout=60)
    expected = read_safetensors(expected_path)
    bad = [n for n in expected if n not in weights.names() or bytes(weights.raw(n)) != expected[n]]
    extra = sorted(set(weights.names()) - set(expected))
    for name in weights.names():  # every dtype view must work too
        weights.tensor(name)
    print("checked %d tensors: %d differ, %d unexpected" % (len(expected), len(bad), len(extra)), flush=True)
    return 0 if not bad and not extra else 1


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument("--check", metavar="SAFETENSORS")
    args = parser.parse_args()
    # Signal mode ($TENSORINIT_SOCKET set): this server waits on the socket; it also catches
    # handoff.signal (SIGUSR1) so the signal is harmless (tensorinit sends it only once caught).
    if os.environ.get("TENSORINIT_SOCKET"):
        tc.ReadySignal()
    if args.check:
        sys.exit(check(args.check))
    state = State()
    threading.Thread(target=load, args=(state,), daemon=True).start()
    serve(state, args.port)


if __name__ == "__main__":
    main()
