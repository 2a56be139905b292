"""The server in the podman test's containers (python3, standard library and the tensorinit_client
package only): takes the staged weights through tensorinit_client, compares every tensor byte for
byte with the source's safetensors files, prints the verdict; with --serve it then waits,
recording each forwarded signal in --status (a host directory) so the test can synchronise on it.

    server.py [--serve] [--await-usr1] [--status DIR] [--exit-on-term CODE]

--await-usr1 (signal mode): after the verdict, waits for tensorinit's SIGUSR1 before exiting. A
server that exits on its own while tensorinit is about to send the signal can die of it: CPython
resets its handlers to the default (kill) while it finalizes, after tensorinit saw the handler in
/proc/PID/status (the container exited 138 once in CI, the verdict already printed).

SIGUSR2: compares the mapped weights with the source again ("reverified N tensors: N differ").
SIGTERM: default disposition (the server dies of it: tensorinit, and so the container, exits 143),
or with --exit-on-term CODE it records it and exits CODE.
"""

import argparse
import json
import os
import signal
import struct
import sys
import threading

import tensorinit_client as tc


def record(status, line):
    # os.write, not print: the signal handlers record too, and a handler that runs while the main
    # code is inside print() re-enters sys.stdout's buffer ("RuntimeError: reentrant call"; the
    # server died of it under load and test_podman timed out).
    os.write(1, (line + "\n").encode())
    if status:
        with open(os.path.join(status, "events"), "a") as f:
            f.write(line + "\n")


def source_tensors(directory):
    """{name: (file, absolute offset, bytes)} of every tensor in the directory's safetensors files."""
    out = {}
    for name in sorted(os.listdir(directory)):
        if not name.endswith(".safetensors"):
            continue
        path = os.path.join(directory, name)
        with open(path, "rb") as f:
            size = struct.unpack("<Q", f.read(8))[0]
            header = json.loads(f.read(size))
        header.pop("__metadata__", None)
        for key, info in header.items():
            begin, end = info["data_offsets"]
            out[key] = (path, 8 + size + begin, end - begin)
    return out


def verify(weights):
    expected = source_tensors(os.environ["TENSORINIT_MODEL_DIR"])
    differ = [n for n, (path, offset, size) in expected.items()
              if n not in weights.names() or bytes(weights.raw(n)) != _read(path, offset, size)]
    extra = sorted(set(weights.names()) - set(expected))
    return len(expected), differ, extra


def _read(path, offset, size):
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(size)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--serve", action="store_true")
    parser.add_argument("--status")
    parser.add_argument("--exit-on-term", type=int)
    parser.add_argument("--await-usr1", action="store_true")
    args = parser.parse_args()
    got = threading.Event()
    usr1 = threading.Event()

    def on_signal(s, _f):
        record(args.status, "got %s" % signal.Signals(s).name)
        if s == signal.SIGUSR1:
            usr1.set()
    for signum in (signal.SIGHUP, signal.SIGUSR1):
        signal.signal(signum, on_signal)
    weights = None

    def reverify(_s, _f):  # SIGUSR2: are the mapped weights still the source's?
        if weights is not None:
            count, differ, extra = verify(weights)
            record(args.status, "reverified %d tensors: %d differ" % (count, len(differ)))
    signal.signal(signal.SIGUSR2, reverify)
    if args.exit_on_term is not None:
        def on_term(_s, _f):
            record(args.status, "got SIGTERM")
            os._exit(args.exit_on_term)
        signal.signal(signal.SIGTERM, on_term)

    weights = tc.wait_and_open(timeout=120)
    count, differ, extra = verify(weights)
    source = weights.table.get("source", {})
    record(args.status, "verified %d tensors from %s %s as uid %d: %d differ, %d unexpected"
           % (count, source.get("type"), source.get("path"), os.getuid(), len(differ), len(extra)))
    if differ or extra or count == 0:
        return 1
    if args.await_usr1 and not usr1.wait(120):
        record(args.status, "no SIGUSR1 from tensorinit in 120 s")
        return 1
    if args.serve:
        record(args.status, "serving")
        while not got.wait(3600):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
