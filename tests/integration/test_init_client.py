"""The Python client package (examples/clients/python: `import tensorinit_client`) and the tiny example server
against an arena laid out as the contract says (tensors at 256-byte offsets in /dev/shm, the
table JSON), built here from the safetensors fixture plus a BF16 tensor; the readiness-socket
protocol as docs/init.md documents it. Runs under the system python3 (numpy and torch when
installed) and again with `python3 -S` (standard library only)."""

import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import urllib.request

TESTS_DIR = os.environ.get("TESTS_DIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
ROOT = os.path.dirname(os.path.abspath(TESTS_DIR))
FIXTURES = os.environ.get("FIXTURES", os.path.join(TESTS_DIR, "fixtures"))
sys.path.insert(0, os.path.join(ROOT, "examples", "clients", "python"))
import tensorinit_client as tc  # noqa: E402

SERVER = os.path.join(ROOT, "examples", "tiny-server", "server.py")
FIXTURE = os.path.join(FIXTURES, "tiny-f16.safetensors")
failures = 0


def check(name, ok, detail=""):
    global failures
    print(("ok   " if ok else "FAIL ") + name + ("" if ok else ": " + str(detail)), flush=True)
    failures += 0 if ok else 1


def read_safetensors(path):
    with open(path, "rb") as f:
        size = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(size))
        data = f.read()
    header.pop("__metadata__", None)
    return {k: (v["dtype"], v["shape"], data[v["data_offsets"][0]:v["data_offsets"][1]]) for k, v in header.items()}


BF16_VALUES = [1.0, -2.5, 0.15625, 1048576.0]  # exactly representable in bfloat16


def bf16_bytes(values):
    return b"".join(struct.pack("<f", v)[2:] for v in values)


def build_arena(tmp):
    tensors = read_safetensors(FIXTURE)
    tensors["extra.bf16"] = ("BF16", [2, 2], bf16_bytes(BF16_VALUES))
    arena_path = "/dev/shm/tensorinit-clienttest-%d-0" % os.getpid()
    blob = bytearray()
    entries = []
    for name, (dtype, shape, raw) in tensors.items():
        blob.extend(b"\0" * (-len(blob) % 256))
        entries.append({"name": name, "dtype": dtype, "shape": shape, "arena": 0,
                        "offset": len(blob), "bytes": len(raw)})
        blob.extend(raw)
    with open(arena_path, "wb") as f:
        f.write(blob)
    table = {"version": 1, "model": "clienttest", "source": {"type": "image", "path": FIXTURE},
             "arenas": [{"index": 0, "device": "host", "bytes": len(blob), "path": arena_path}],
             "tensors": entries}
    table_path = os.path.join(tmp, "table.json")
    with open(table_path, "w") as f:
        json.dump(table, f)
    return tensors, table, table_path, arena_path


def serve_once(path, answer):
    """A stand-in for tensorinit's socket: answers one client with `answer` bytes."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)

    def run():
        conn, _ = listener.accept()
        conn.sendall(answer)
        conn.close()
        listener.close()
    threading.Thread(target=run, daemon=True).start()


def main():
    tmp = tempfile.mkdtemp(prefix="tensorinit-client-")
    tensors, table, table_path, arena_path = build_arena(tmp)
    try:
        # Mapping: every tensor's bytes, views, no copy.
        weights = tc.StagedWeights(table)
        check("every tensor's bytes match the fixture",
              all(bytes(weights.raw(n)) == tensors[n][2] for n in tensors))
        if tc.numpy is not None:
            raw16 = weights.numpy("extra.bf16")
            check("numpy: BF16 as raw uint16 with the table's shape",
                  raw16.dtype.name == "uint16" and raw16.shape == (2, 2) and raw16.tobytes() == bf16_bytes(BF16_VALUES))
            emb = weights.numpy("embed.weight")
            check("numpy: F16 view with shape", emb.dtype.name == "float16" and list(emb.shape) == tensors["embed.weight"][1])
        if tc.torch is not None:
            torch = tc.torch
            b = weights.torch("extra.bf16")
            check("torch: BF16 values", b.dtype == torch.bfloat16 and b.float().flatten().tolist() == BF16_VALUES, b)
            # Built empty on the meta device: every staged key but one, plus one the model lacks.
            model = torch.nn.Module()
            for name, (dtype, shape, _) in tensors.items():
                if name == "extra.bf16":
                    continue
                owner = model
                *path, leaf = name.split(".")
                for part in path:
                    if not hasattr(owner, part):
                        owner.add_module(part, torch.nn.Module())
                    owner = getattr(owner, part)
                t = torch.empty(shape, device="meta", dtype=getattr(torch, tc._DTYPES[dtype][1]))
                if t.is_floating_point():
                    owner.register_parameter(leaf, torch.nn.Parameter(t))
                else:
                    owner.register_buffer(leaf, t)
            model.add_module("classifier", torch.nn.Linear(16, 4, bias=False, device="meta"))
            result = weights.load_into_module(model)
            check("load_into_module: missing and unexpected keys", result == tc.LoadResult(["classifier.weight"], ["extra.bf16"]), result)
            on_meta = [k for k, v in model.state_dict().items() if v.is_meta and k != "classifier.weight"]
            check("load_into_module: nothing left on the meta device", not on_meta, on_meta)
            emb = model.state_dict()["embed.weight"]
            check("load_into_module: parameters share the arena's bytes",
                  emb.numpy().tobytes() == tensors["embed.weight"][2] and isinstance(model.embed.weight, torch.nn.Parameter))

            wrong = torch.nn.Module()
            wrong.add_module("head", torch.nn.Linear(16, 4, bias=False, device="meta"))
            try:
                weights.load_into_module(wrong)
                check("load_into_module: a shape mismatch is an error", False, "no exception")
            except ValueError as e:
                check("load_into_module: a shape mismatch is an error", "head.weight" in str(e), e)

        # The socket protocol: "ready <n>\n" + table; "error <code> <message>\n"; extra tokens ignored.
        body = json.dumps(table).encode()
        sock = os.path.join(tmp, "ready.sock")
        serve_once(sock, b"ready %d fds=0\n" % len(body) + body)
        check("wait_ready returns the table", tc.wait_ready(sock, timeout=10) == table)
        os.unlink(sock)
        serve_once(sock, b"error 65 model.safetensors: header is not JSON\n")
        try:
            tc.wait_ready(sock, timeout=10)
            check("wait_ready raises on an error answer", False, "no exception")
        except tc.TensorinitError as e:
            check("wait_ready raises on an error answer, with the code", e.code == 65 and "header is not JSON" in str(e), e)

        # The example server: --check compares every tensor's bytes (all libraries, then stdlib only).
        env = dict(os.environ, TENSORINIT_TABLE=table_path)
        env.pop("TENSORINIT_SOCKET", None)
        for flags in ([], ["-S"]):
            r = subprocess.run([sys.executable, *flags, SERVER, "--check", FIXTURE], env=env,
                               capture_output=True, text=True, timeout=120)
            check("server.py %s --check: every tensor verified" % " ".join(flags),
                  r.returncode == 1 and "1 unexpected" in r.stdout and "0 differ" in r.stdout, r.stdout + r.stderr)
        # ...and answers HTTP with the sum of each tensor.
        proc = subprocess.Popen([sys.executable, "-S", SERVER, "--port", "0"], env=env,
                                stderr=subprocess.PIPE, text=True)
        try:
            line = proc.stderr.readline()
            port = int(line.rsplit(":", 1)[1])
            answer = None
            for _ in range(200):
                try:
                    with urllib.request.urlopen("http://127.0.0.1:%d/" % port, timeout=5) as resp:
                        answer = json.load(resp)
                    break
                except urllib.error.HTTPError as e:  # 503 while loading
                    if e.code != 503:
                        raise
                    threading.Event().wait(0.05)
            check("server answers with the sum of each tensor",
                  answer is not None and answer["tensors"] == len(tensors)
                  and answer["sums"]["extra.bf16"] == sum(BF16_VALUES), answer)
        finally:
            proc.kill()
            proc.wait()
    finally:
        os.unlink(arena_path)

    # The package's own pytest suite (its torch/transformers tests skip where those are absent;
    # tests/vllm/setup.sh makes a venv that has them: PYTHON=... to run it there).
    python = os.environ.get("CLIENT_PYTHON", sys.executable)
    if subprocess.run([python, "-c", "import pytest"], capture_output=True).returncode == 0:
        r = subprocess.run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                            os.path.join(ROOT, "examples", "clients", "python", "tests")],
                           capture_output=True, text=True, timeout=900, cwd=os.path.join(ROOT, "examples", "clients", "python"))
        summary = (r.stdout.strip().splitlines() or ["(no output)"])[-1]
        check("the client package's pytest suite: " + summary, r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:])
    else:
        print("skip - the client package's pytest suite (no pytest for %s)" % python)
    print("%d failure(s)" % failures)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
