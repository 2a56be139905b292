"""The inference-server stand-in of the cold-start benchmark (tests/bench/coldstart/coldstart.py).

It behaves like a real Python server: imports torch first thing, gets the weights as torch
tensors, then listens on HTTP. GET / answers with a checksum of every byte of every tensor
(computed on the first request, kept for the next), so no strategy can answer before all the
weights are really in memory, however lazily they were mapped.

    server.py --mode files [--dir DIR] --port N   # reads the safetensors files itself
                                                  # (safetensors.torch.load_file); DIR defaults to
                                                  # $TENSORINIT_MODEL_DIR (tensorinit exec mode)
    server.py --mode table --port N               # tensorinit signal mode: waits on
                                                  # $TENSORINIT_SOCKET, then torch.frombuffer views
                                                  # of the arena (no copy); exec mode: $TENSORINIT_TABLE
    server.py --reference DIR                     # the expected answer, straight from the files
                                                  # with numpy (no torch, no tensorinit)

The answer: {"checksum": "<16 hex>", "tensors": N, "bytes": B, "mode": ..., "times": {...}}.
checksum = sum over tensors of the sum of the tensor's bytes read as little-endian u64 words
(the last word zero-padded), mod 2**64. "times" are time.monotonic() readings (CLOCK_MONOTONIC,
the same clock as the driver's) at: "main" (first line of this file), "imports" (torch and the
loader imported), "weights" (every tensor object exists), "listen" (socket bound), "answer" (the
first checksum computed).
"""

import signal
import sys
import time

T_MAIN = time.monotonic()
# SIGTERM ends the server at once (as PID 1 of a namespace, unhandled SIGTERM would be ignored).
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

import argparse  # noqa: E402
import glob  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import struct  # noqa: E402

MASK64 = (1 << 64) - 1


def bytes_checksum(u8):
    """Sum of a 1-D uint8 numpy array read as little-endian u64 words (tail zero-padded), mod 2**64."""
    import numpy

    n8 = len(u8) // 8 * 8
    total = int(u8[:n8].view("<u8").sum(dtype=numpy.uint64)) if n8 else 0
    tail = bytes(u8[n8:])
    if tail:
        total += int.from_bytes(tail + bytes(8 - len(tail)), "little")
    return total & MASK64


def tensor_checksum(t):
    """bytes_checksum of a torch tensor's contents, through a numpy view of its memory (no copy)."""
    import torch

    flat = t.contiguous().reshape(-1)
    if flat.numel() == 0:
        return 0, 0
    u8 = flat.view(torch.uint8).numpy()
    return bytes_checksum(u8), len(u8)


def answer_for(tensors):
    total, nbytes = 0, 0
    for name in sorted(tensors):
        s, n = tensor_checksum(tensors[name])
        total = (total + s) & MASK64
        nbytes += n
    return {"checksum": "%016x" % total, "tensors": len(tensors), "bytes": nbytes}


def model_files(directory):
    """The weight files of a model directory: those the index names, else every *.safetensors."""
    index = os.path.join(directory, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            names = sorted(set(json.load(f)["weight_map"].values()))
        return [os.path.join(directory, n) for n in names]
    files = sorted(glob.glob(os.path.join(directory, "*.safetensors")))
    if not files:
        raise SystemExit("server: no *.safetensors in %s" % directory)
    return files


def weights_from_files(directory):
    """What a server without tensorinit does: safetensors.torch.load_file on every file."""
    from safetensors.torch import load_file

    tensors = {}
    for path in model_files(directory):
        tensors.update(load_file(path, device="cpu"))
    return tensors


def weights_from_tensorinit():
    """Signal mode: block on $TENSORINIT_SOCKET; exec mode: the table is there. Views, no copy."""
    import tensorinit_client as tc

    staged = tc.wait_and_open()
    return {name: staged.torch(name) for name in staged.names()}, staged


def reference(directory):
    """The expected answer from the files alone: headers parsed here, data read with numpy."""
    import numpy

    total, nbytes, count = 0, 0, 0
    for path in model_files(directory):
        with open(path, "rb") as f:
            size = struct.unpack("<Q", f.read(8))[0]
            header = json.loads(f.read(size))
        data = numpy.memmap(path, dtype=numpy.uint8, mode="r", offset=8 + size) if os.path.getsize(path) > 8 + size else None
        for name, entry in header.items():
            if name == "__metadata__":
                continue
            begin, end = entry["data_offsets"]
            count += 1
            if end > begin:
                total = (total + bytes_checksum(numpy.asarray(data[begin:end]))) & MASK64
                nbytes += end - begin
    return {"checksum": "%016x" % total, "tensors": count, "bytes": nbytes}


def serve(port, tensors, mode, times):
    import http.server

    cached = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path != "/":
                self._reply(404, {"error": "not found"})
                return
            if not cached:
                cached.update(answer_for(tensors))
                times["answer"] = time.monotonic()
                cached["mode"] = mode
                cached["times"] = times
            self._reply(200, cached)

        def _reply(self, code, body):
            data = json.dumps(body, sort_keys=True).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", port), Handler)
    times["listen"] = time.monotonic()
    server.serve_forever()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mode", choices=["files", "table"])
    parser.add_argument("--dir", help="files mode: the model directory (default $TENSORINIT_MODEL_DIR)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--reference", metavar="DIR")
    args = parser.parse_args()
    if args.reference:
        print(json.dumps(reference(args.reference), sort_keys=True))
        return
    if args.mode is None:
        parser.error("--mode or --reference is required")

    times = {"main": T_MAIN}
    if args.mode == "table":
        # tensorinit sends handoff.signal once the server catches it; catch it before the slow
        # imports so the signal is harmless whenever it comes (readiness is read from the socket).
        signal.signal(signal.SIGUSR1, lambda *_: None)
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                        "..", "..", "..", "examples", "clients", "python"))
        import torch  # noqa: F401  (a real server pays this import; here it overlaps the load)
        import numpy  # noqa: F401
        import tensorinit_client  # noqa: F401
        times["imports"] = time.monotonic()
        tensors, staged = weights_from_tensorinit()
    else:
        import torch  # noqa: F401,F811
        import numpy  # noqa: F401,F811
        import safetensors.torch  # noqa: F401
        times["imports"] = time.monotonic()
        directory = args.dir or os.environ.get("TENSORINIT_MODEL_DIR")
        if not directory:
            parser.error("files mode needs --dir or $TENSORINIT_MODEL_DIR")
        tensors = weights_from_files(directory)
    times["weights"] = time.monotonic()
    serve(args.port, tensors, args.mode, times)


if __name__ == "__main__":
    main()
