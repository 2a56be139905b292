#!/usr/bin/env python3
"""The chaos harness's stand-in inference server (stdlib only).

  server.py RECORD exec|signal [HOLD]

Appends one JSON object per line to RECORD: {"event": "started"} first thing, then
{"event": "verified", "tensors": {name: [dtype, shape, sha256]}} (or "error") each time it reads
every tensor through $TENSORINIT_TABLE, {"event": "signal", "signo": N} for signals it gets, and
{"event": "exit", "code": N}. It never judges: the harness compares the hashes with the bytes it
generated. exec: verifies at once. signal: waits for SIGUSR1 (the weights are ready) or SIGTERM.
With HOLD, after the first verification it waits until the file HOLD exists (the harness creates
it once every other instance of the scenario has finished), then verifies again: the bytes must
still be right while the server lives.
"""
import hashlib
import json
import mmap
import os
import signal
import sys
import time


def table_hashes(table_path, shm_dir=None):
    """{name: [dtype, shape, sha256]} of every tensor the table names, read the way a server would;
    raises on anything unreadable (missing arena, offset past the end, bad alignment). shm_dir: the
    directory that was /dev/shm for the instance that wrote the table (the harness reads it from
    outside that mount namespace)."""
    with open(table_path) as f:
        table = json.load(f)
    if table.get("version") != 1:
        raise ValueError(f"table version {table.get('version')}")
    maps, out = {}, {}
    try:
        for t in table["tensors"]:
            if "arena" in t:
                arena = table["arenas"][t["arena"]]
                if t["offset"] % 256:
                    raise ValueError(f"{t['name']}: offset {t['offset']} not 256-aligned")
                path = arena["path"]
                if shm_dir and path.startswith("/dev/shm/"):
                    path = os.path.join(shm_dir, path[len("/dev/shm/"):])
                if path not in maps:
                    with open(path, "rb") as f:
                        size = os.fstat(f.fileno()).st_size
                        maps[path] = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
                m = maps[path]
                if t["offset"] + t["bytes"] > len(m):
                    raise ValueError(f"{t['name']}: past the end of {path}")
                data = m[t["offset"]:t["offset"] + t["bytes"]]
            else:
                with open(t["file"], "rb") as f:
                    f.seek(t["file_offset"])
                    data = f.read(t["bytes"])
                if len(data) != t["bytes"]:
                    raise ValueError(f"{t['name']}: short read from {t['file']}")
            if t["name"] in out:
                raise ValueError(f"{t['name']}: twice in the table")
            out[t["name"]] = [t["dtype"], list(t["shape"]), hashlib.sha256(data).hexdigest()]
    finally:
        for m in maps.values():
            if isinstance(m, mmap.mmap):
                m.close()
    return out


class Recorder:
    def __init__(self, path):
        self.path = path

    def __call__(self, **event):
        event["t"] = time.time()
        line = json.dumps(event) + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)


def verify(record):
    try:
        record(event="verified", tensors=table_hashes(os.environ["TENSORINIT_TABLE"]))
    except Exception as e:  # noqa: BLE001: whatever went wrong is the finding
        record(event="error", what=f"{type(e).__name__}: {e}")


def main():
    record, mode = Recorder(sys.argv[1]), sys.argv[2]
    hold = sys.argv[3] if len(sys.argv) > 3 else None
    wanted = [signal.SIGUSR1, signal.SIGTERM, signal.SIGHUP, signal.SIGINT]
    signal.pthread_sigmask(signal.SIG_BLOCK, wanted)
    record(event="started", pid=os.getpid(), mode=mode, env={k: v for k, v in os.environ.items()
                                                            if k.startswith("TENSORINIT_")})
    parent = os.getppid()
    deadline = time.monotonic() + 300
    if mode == "signal":
        while True:
            got = signal.sigtimedwait(wanted, 0.2)
            if got is None:
                if os.getppid() != parent or time.monotonic() > deadline:
                    record(event="orphaned")
                    sys.exit(99)
                continue
            signo = got.si_signo
            record(event="signal", signo=signo)
            if signo == signal.SIGUSR1:
                break
            if signo in (signal.SIGTERM, signal.SIGINT):
                record(event="exit", code=128 + signo)
                sys.exit(128 + signo)
    verify(record)
    if hold:
        while not os.path.exists(hold) and time.monotonic() < deadline:
            pending = signal.sigtimedwait(wanted, 0.005)
            if pending:
                record(event="signal", signo=pending.si_signo)
                if pending.si_signo in (signal.SIGTERM, signal.SIGINT):
                    break
        verify(record)
    record(event="exit", code=0)
    sys.exit(0)


if __name__ == "__main__":
    main()
