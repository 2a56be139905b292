"""Fixtures: host arenas laid out as tensorinit lays them (tensors at 256-byte offsets in one
/dev/shm file, the table JSON), and the tensorinit binary when one is built."""

from __future__ import annotations

import os
import shutil
import uuid
from typing import Dict, Iterator, List, Tuple

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
Raw = Tuple[str, List[int], bytes]  # (safetensors dtype, shape, raw little-endian bytes)


def read_safetensors(path: str) -> Dict[str, Raw]:
    import json
    import struct
    with open(path, "rb") as f:
        size = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(size))
        data = f.read()
    header.pop("__metadata__", None)
    return {k: (v["dtype"], v["shape"], data[v["data_offsets"][0]:v["data_offsets"][1]]) for k, v in header.items()}


class ArenaFactory:
    """make(tensors) -> table: writes one host arena into /dev/shm; removed at teardown."""

    def __init__(self) -> None:
        self.paths: List[str] = []

    def make(self, tensors: Dict[str, Raw], model: str = "pytest") -> dict:
        path = "/dev/shm/tensorinit-%s-%s-0" % (model, uuid.uuid4().hex[:12])
        blob = bytearray()
        entries = []
        for name, (dtype, shape, raw) in tensors.items():
            blob.extend(b"\0" * (-len(blob) % 256))
            entries.append({"name": name, "dtype": dtype, "shape": shape, "arena": 0,
                            "offset": len(blob), "bytes": len(raw)})
            blob.extend(raw)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
        self.paths.append(path)
        return {"version": 1, "model": model, "source": {"type": "image", "path": "/models/" + model},
                "arenas": [{"index": 0, "device": "host", "bytes": len(blob), "path": path}],
                "tensors": entries}

    def cleanup(self) -> None:
        for path in self.paths:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass


@pytest.fixture
def arenas() -> Iterator[ArenaFactory]:
    factory = ArenaFactory()
    yield factory
    factory.cleanup()


@pytest.fixture(scope="session")
def tensorinit_binary() -> str:
    """$TENSORINIT, else the repository's build/tensorinit, else tensorinit on PATH; skip if none."""
    for candidate in (os.environ.get("TENSORINIT"), os.path.join(ROOT, "build", "tensorinit"), shutil.which("tensorinit")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.skip("no tensorinit binary (build it, or set TENSORINIT)")
