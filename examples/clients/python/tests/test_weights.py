"""Zero-copy views of a host arena and of page-cached safetensors files, with real numpy/torch."""

from __future__ import annotations

import json
import os
import struct

import pytest

import tensorinit_client as tc

torch = pytest.importorskip("torch")
BF16 = [1.0, -2.5, 0.15625, 1048576.0]  # exactly representable in bfloat16


def sample() -> dict:
    return {
        "embed.weight": ("F32", [3, 4], struct.pack("<12f", *range(12))),
        "norm.scale": ("F16", [4], struct.pack("<4e", 0.5, 1.5, -2.0, 4.0)),
        "extra.bf16": ("BF16", [2, 2], b"".join(struct.pack("<f", v)[2:] for v in BF16)),
        "step": ("I64", [], struct.pack("<q", -7)),
        "empty": ("F32", [0, 5], b""),
    }


def test_every_view_has_the_bytes(arenas):
    tensors = sample()
    weights = tc.StagedWeights(arenas.make(tensors))
    assert weights.names() == list(tensors)
    for name, (_, shape, raw) in tensors.items():
        assert bytes(weights.raw(name)) == raw
        t = weights.torch(name)
        assert list(t.shape) == shape
        assert t.numpy().tobytes() == raw if t.dtype != torch.bfloat16 else t.view(torch.int16).numpy().tobytes() == raw
    assert weights.torch("extra.bf16").dtype == torch.bfloat16
    assert weights.torch("extra.bf16").float().flatten().tolist() == BF16
    assert weights.torch("step").item() == -7
    np = pytest.importorskip("numpy")
    assert weights.numpy("extra.bf16").dtype == np.uint16  # numpy has no bfloat16: raw bits
    assert weights.numpy("norm.scale").tolist() == [0.5, 1.5, -2.0, 4.0]


def test_host_tensors_are_views_of_the_arena_not_copies(arenas):
    table = arenas.make(sample())
    weights = tc.StagedWeights(table)
    t = weights.torch("embed.weight")
    entry = next(e for e in table["tensors"] if e["name"] == "embed.weight")
    # Written to the arena after mapping: the tensor sees it (no copy was made).
    fd = os.open(table["arenas"][0]["path"], os.O_WRONLY)
    try:
        os.pwrite(fd, struct.pack("<f", 42.0), entry["offset"] + 4)
    finally:
        os.close(fd)
    assert t[0, 1].item() == 42.0
    # Written through the tensor: copy-on-write, the arena is unchanged.
    t[0, 0] = -1.0
    with open(table["arenas"][0]["path"], "rb") as f:
        f.seek(entry["offset"])
        assert struct.unpack("<f", f.read(4))[0] == 0.0
    assert weights.torch("embed.weight").data_ptr() == t.data_ptr()


def test_a_table_that_lies_is_an_error_not_a_wild_read(arenas):
    table = arenas.make(sample())
    entry = next(e for e in table["tensors"] if e["name"] == "embed.weight")
    entry["offset"] = table["arenas"][0]["bytes"] - 8
    with pytest.raises(ValueError, match="beyond"):
        tc.StagedWeights(table).torch("embed.weight")
    entry["offset"], entry["shape"] = 0, [4, 4]
    with pytest.raises(ValueError, match="do not hold shape"):
        tc.StagedWeights(table).torch("embed.weight")
    entry["shape"], entry["dtype"] = [3, 4], "F4_PACKED"
    with pytest.raises(TypeError):
        tc.StagedWeights(table).torch("embed.weight")


def pagecache_table(path: str) -> dict:
    """The table tensorinit writes for stage.target: pagecache (no arenas; file + file_offset)."""
    with open(path, "rb") as f:
        size = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(size))
    header.pop("__metadata__", None)
    return {"version": 1, "model": "pc", "source": {"type": "image", "path": os.path.dirname(path)},
            "tensors": [{"name": k, "dtype": v["dtype"], "shape": v["shape"], "file": path,
                         "file_offset": 8 + size + v["data_offsets"][0],
                         "bytes": v["data_offsets"][1] - v["data_offsets"][0]} for k, v in header.items()]}


def test_pagecache_table_matches_safetensors_own_mmap(tmp_path):
    safetensors_torch = pytest.importorskip("safetensors.torch")
    from safetensors import safe_open
    g = torch.Generator().manual_seed(1)
    original = {"a.weight": torch.randn(7, 5, generator=g).to(torch.bfloat16),
                "b.bias": torch.randn(5, generator=g), "c.ids": torch.arange(9, dtype=torch.int32),
                "d.half": torch.randn(2, 3, 4, generator=g).half()}
    path = str(tmp_path / "model.safetensors")
    safetensors_torch.save_file(original, path)
    weights = tc.StagedWeights(pagecache_table(path))
    with safe_open(path, framework="pt") as f:  # safetensors maps the file itself
        for name in f.keys():
            ours, theirs = weights.torch(name), f.get_tensor(name)
            assert ours.dtype == theirs.dtype and ours.shape == theirs.shape and torch.equal(ours, theirs)
    # Zero copy: the view's memory is the file's page-cache pages, mapped at file_offset.
    t = weights.torch("b.bias")
    entry = next(e for e in weights.table["tensors"] if e["name"] == "b.bias")
    with open(path, "r+b") as f:
        f.seek(entry["file_offset"])
        f.write(struct.pack("<f", 123.0))
    assert t[0].item() == 123.0


def test_pagecache_bounds_are_checked(tmp_path):
    path = tmp_path / "short.safetensors"
    path.write_bytes(b"\0" * 64)
    table = {"version": 1, "tensors": [{"name": "x", "dtype": "F32", "shape": [32], "file": str(path),
                                        "file_offset": 0, "bytes": 128}]}
    with pytest.raises(ValueError, match="beyond its file"):
        tc.StagedWeights(table).torch("x")
