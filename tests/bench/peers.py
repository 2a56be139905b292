#!/usr/bin/env python3
"""Helpers for bench.sh: the peer loaders, the page-cache dropper, memcpy, and the final table.

Each `load-*` command loads every tensor of the model into CPU memory the way a user of that
library would, touches one byte of every page of every tensor (so a lazily mmap-backed result
pays for its reads inside the timed region, as a server using it would), and prints one line of
JSON: {"bytes": N, "seconds": S}. The clock starts after the interpreter and its imports are up
(torch's import alone takes seconds and is not the loader's fault) and stops when the touch ends.

Usage:
  peers.py load-safetensors MODEL_DIR
  peers.py load-tensorizer FILE.tensors
  peers.py load-runai MODEL_DIR
  peers.py write-tensors MODEL_DIR OUT.tensors     # tensorizer's own serializer writes the copy
  peers.py check PEER                                # exit 0 when the peer imports and works here
  peers.py drop FILE...                              # posix_fadvise(DONTNEED) after fdatasync
  peers.py memcpy [GIB]                              # numpy copyto bandwidth, fallback for no cc
  peers.py table RESULTS.tsv                         # the summary table and the goals check
"""
import glob
import json
import os
import statistics
import sys
import time


def model_files(model_dir):
    files = sorted(glob.glob(os.path.join(model_dir, "*.safetensors")))
    if not files:
        sys.exit(f"peers.py: {model_dir}: no *.safetensors files")
    return files


def touch_pages(tensors):
    """Reads one byte per 4 KiB page of each tensor; returns the tensor bytes."""
    import torch
    total = 0
    for t in tensors:
        flat = t.reshape(-1).view(torch.uint8) if t.dtype != torch.uint8 else t.reshape(-1)
        if flat.numel():
            flat[::4096].sum()
        total += flat.numel()
    return total


def emit(nbytes, seconds, **extra):
    print(json.dumps({"bytes": nbytes, "seconds": seconds, **extra}))


def load_safetensors(model_dir):
    from safetensors.torch import load_file
    files = model_files(model_dir)
    start = time.perf_counter()
    keep = []
    for f in files:
        keep.extend(load_file(f, device="cpu").values())
    nbytes = touch_pages(keep)
    emit(nbytes, time.perf_counter() - start)


def load_tensorizer(path):
    from tensorizer import TensorDeserializer
    start = time.perf_counter()
    deserializer = TensorDeserializer(path, device="cpu", lazy_load=False)
    tensors = list(deserializer.values())
    nbytes = touch_pages(tensors)
    emit(nbytes, time.perf_counter() - start)
    deserializer.close()


def load_runai(model_dir):
    # Defaults: RUNAI_STREAMER_MEMORY_LIMIT unset = unlimited, so the streamer's buffer holds the
    # whole file and the yielded tensors stay valid without a copy.
    from runai_model_streamer import SafetensorsStreamer
    files = model_files(model_dir)
    start = time.perf_counter()
    keep = []
    with SafetensorsStreamer() as streamer:
        for f in files:
            streamer.stream_file(f)
            tensors = [t for _, t in streamer.get_tensors()]
            # Each stream_file reuses the buffer: a server copies out before the next file.
            if len(files) > 1:
                tensors = [t.clone() for t in tensors]
            keep.extend(tensors)
        nbytes = touch_pages(keep)
        seconds = time.perf_counter() - start
    emit(nbytes, seconds, copied_per_file=len(files) > 1)


def write_tensors(model_dir, out):
    from safetensors.torch import load_file
    from tensorizer import TensorSerializer
    state = {}
    for f in model_files(model_dir):
        state.update(load_file(f, device="cpu"))
    tmp = out + ".partial"
    serializer = TensorSerializer(tmp)
    serializer.write_state_dict(state)
    serializer.close()
    os.replace(tmp, out)


def check(peer):
    import torch  # noqa: F401  every peer loads into torch tensors
    if peer == "safetensors":
        from safetensors.torch import load_file, save_file
        tmp = f"/var/tmp/.peers-check-{os.getpid()}.safetensors"
        try:
            save_file({"w": torch.ones(4, 4, dtype=torch.bfloat16)}, tmp)
            assert float(load_file(tmp)["w"].float().sum()) == 16.0
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    elif peer == "tensorizer":
        from tensorizer import TensorDeserializer, TensorSerializer  # noqa: F401
    elif peer == "runai":
        from runai_model_streamer import SafetensorsStreamer  # noqa: F401
    else:
        sys.exit(f"peers.py: unknown peer {peer}")


def drop(files):
    for f in files:
        fd = os.open(f, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def memcpy_numpy(gib):
    import numpy as np
    n = int(gib * (1 << 30))
    src = np.ones(n, dtype=np.uint8)
    dst = np.zeros(n, dtype=np.uint8)
    runs = []
    for _ in range(5):
        start = time.perf_counter()
        np.copyto(dst, src)
        runs.append(time.perf_counter() - start)
    emit(n, statistics.median(runs), how="numpy.copyto")


# ---------------------------------------------------------------------------------------------
# The table

def table(path):
    rows = {}
    order = []
    for line in open(path):
        if not line.strip() or line.startswith("#"):
            continue
        method, _round, nbytes, seconds = line.rstrip("\n").split("\t")[:4]
        if method not in rows:
            rows[method] = []
            order.append(method)
        if float(seconds) > 0:
            rows[method].append(int(nbytes) / float(seconds) / 1e9)

    med = {m: statistics.median(v) for m, v in rows.items() if v}
    fio = med.get("fio O_DIRECT 16M x16")
    dd = med.get("dd bs=4M (buffered)")

    def ratio(x, base):
        return f"{x / base:6.2f}" if base else "     -"

    print(f"{'method':<40} {'GB/s med':>8} {'min':>6} {'max':>6} {'n':>2} {'/fio':>6} {'/dd':>6}")
    print("-" * 80)
    for m in order:
        v = rows[m]
        if not v:
            print(f"{m:<40} {'failed':>8}")
            continue
        print(f"{m:<40} {med[m]:8.2f} {min(v):6.2f} {max(v):6.2f} {len(v):2d} {ratio(med[m], fio)} {ratio(med[m], dd)}")
    print()

    host = med.get("tensorinit load host (cold)")
    warm = med.get("tensorinit load host (warm)")
    memcpy = med.get("memcpy (warm baseline)")
    peers = {m: x for m, x in med.items() if m.startswith("peer ")}
    checks = []
    if host and fio:
        checks.append((host >= 0.9 * fio, f"cold host {host:.2f} GB/s >= 90% of fio {fio:.2f} ({host / fio:.0%})"))
    if host and dd:
        checks.append((host >= 2 * dd, f"cold host {host:.2f} GB/s >= 2x buffered dd {dd:.2f} ({host / dd:.2f}x)"))
    for m, x in peers.items():
        if host:
            checks.append((host > x, f"cold host {host:.2f} GB/s ahead of {m[5:]} {x:.2f} ({host / x:.2f}x)"))
    if warm and memcpy:
        checks.append((warm >= 0.7 * memcpy, f"warm host {warm:.2f} GB/s >= 70% of memcpy {memcpy:.2f} ({warm / memcpy:.0%})"))
    print("goals (medians):")
    for ok, text in checks:
        print(f"  [{'PASS' if ok else 'FAIL'}] {text}")
    if not checks:
        print("  (nothing to check: baselines missing)")


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    cmd, args = argv[1], argv[2:]
    if cmd == "load-safetensors":
        load_safetensors(args[0])
    elif cmd == "load-tensorizer":
        load_tensorizer(args[0])
    elif cmd == "load-runai":
        load_runai(args[0])
    elif cmd == "write-tensors":
        write_tensors(args[0], args[1])
    elif cmd == "check":
        check(args[0])
    elif cmd == "drop":
        drop(args)
    elif cmd == "memcpy":
        memcpy_numpy(float(args[0]) if args else 1.0)
    elif cmd == "table":
        table(args[0])
    else:
        sys.exit(f"peers.py: unknown command {cmd}\n{__doc__}")


if __name__ == "__main__":
    main(sys.argv)
