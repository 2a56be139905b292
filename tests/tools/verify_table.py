#!/usr/bin/env python3
"""A stand-in inference server: maps every tensor through the tensor table tensorinit wrote
($TENSORINIT_TABLE) and checks it byte for byte.

  verify_table.py [--expect FILE.expect.json] [--table PATH]

With --expect, each tensor's SHA-256 must match the golden list (names and set identical).
Without it, each tensor is compared with the bytes in the source safetensors files under
$TENSORINIT_MODEL_DIR (parsed here independently of tensorinit). Exits 0 only if all match.
"""
import argparse
import hashlib
import json
import mmap
import os
import struct
import sys


def source_tensors(model_dir):
    """name -> (path, absolute offset, length), from the safetensors headers."""
    out = {}
    for name in sorted(os.listdir(model_dir)):
        if not name.endswith(".safetensors"):
            continue
        path = os.path.join(model_dir, name)
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(n))
        for key, info in header.items():
            if key == "__metadata__":
                continue
            begin, end = info["data_offsets"]
            out[key] = (path, 8 + n + begin, end - begin)
    return out


def tensor_bytes(table, tensor, maps):
    if "arena" in tensor:
        arena = table["arenas"][tensor["arena"]]
        if tensor["offset"] % 256:
            raise SystemExit(f"verify: {tensor['name']}: offset {tensor['offset']} not 256-aligned")
        m = maps.setdefault(arena["path"], None)
        if m is None:
            with open(arena["path"], "rb") as f:
                m = maps[arena["path"]] = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        return m[tensor["offset"]:tensor["offset"] + tensor["bytes"]]
    with open(tensor["file"], "rb") as f:
        f.seek(tensor["file_offset"])
        return f.read(tensor["bytes"])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--expect")
    parser.add_argument("--table", default=os.environ.get("TENSORINIT_TABLE"))
    args = parser.parse_args()
    if not args.table:
        raise SystemExit("verify: no TENSORINIT_TABLE")
    with open(args.table) as f:
        table = json.load(f)
    assert table["version"] == 1, table["version"]
    maps = {}
    checked = 0
    total = 0
    if args.expect:
        with open(args.expect) as f:
            expect = {t["name"]: t for t in json.load(f)["tensors"]}
        names = {t["name"] for t in table["tensors"]}
        if names != set(expect):
            raise SystemExit(f"verify: tensor names differ: {sorted(names ^ set(expect))}")
    else:
        sources = source_tensors(os.environ["TENSORINIT_MODEL_DIR"])
    for t in table["tensors"]:
        data = tensor_bytes(table, t, maps)
        if len(data) != t["bytes"]:
            raise SystemExit(f"verify: {t['name']}: {len(data)} bytes, table says {t['bytes']}")
        if args.expect:
            e = expect[t["name"]]
            if hashlib.sha256(data).hexdigest() != e["sha256"] or t["dtype"] != e["dtype"] or t["shape"] != e["shape"]:
                raise SystemExit(f"verify: {t['name']}: contents, dtype or shape differ from the golden file")
        else:
            path, offset, length = sources[t["name"]]
            with open(path, "rb") as f:
                f.seek(offset)
                if f.read(length) != data:
                    raise SystemExit(f"verify: {t['name']}: bytes differ from {path}")
        checked += 1
        total += len(data)
    print(f"verified {checked} tensors, {total} bytes, byte-exact (source {os.environ.get('TENSORINIT_SOURCE', '?')})")


if __name__ == "__main__":
    main()
