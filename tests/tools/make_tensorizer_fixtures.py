#!/usr/bin/env python3
"""Writes .tensors files with the real tensorizer package, and for each FILE.expect.json listing
what tensorizer's own TensorDeserializer reads back: name (state-dict key), dtype (safetensors
vocabulary), shape, and the SHA-256 of the tensor's raw little-endian bytes.

  make_tensorizer_fixtures.py OUTDIR             the plain files below
  make_tensorizer_fixtures.py --encrypted OUTDIR the encrypted ones (committed in tests/fixtures)

Needs tensorizer and torch. Files:
  modules.tensors   write_module on nested modules: bf16, f16, f32, i64, i8, bool; root-module
                    buffers (stored as ".name"); data version 2
  plain.tensors     only dtypes numpy knows (f32, f64, i32, u8): data version 1
  meta.tensors      a module with parameters on the meta device (data_length 0, loaded as zeros)
                    beside real ones: data version 4
  nested.tensors    write_state_dict of nested dicts and lists (JSON-array tensor paths)
  long.tensors      write_state_dict with a 2^32 x 0 tensor (tensorizer 2.12: data version 5,
                    versioned index entries, 64-bit dimensions) and, where torch has it, a
                    float4_e2m1fn_x2 tensor (F4 in the table, last dimension doubled)
  tensorizer-key.tensors          encrypted with TEST_KEY (EncryptionParams(key)): a module with
                                  bf16, f16, i64, bool, a meta tensor (so data version 4, flagged
                                  encrypted) and a bf16 tensor of two 2 MiB encryption chunks
  tensorizer-passphrase.tensors   encrypted with a key derived from TEST_PASSPHRASE
                                  (EncryptionParams.from_string, Argon2id at its minimum cost so
                                  tests derive it in milliseconds): data version 3
fp8 is written only where torch has float8 types (torch 1.13 does not: said on stderr).
"""
import hashlib
import json
import os
import sys

import torch
from tensorizer import DecryptionParams, EncryptionParams, TensorDeserializer, TensorSerializer

# Test secrets, not real ones: the integration tests give them to tensorinit as model.key (hex,
# and as base64) and model.passphrase.
TEST_KEY = "5be7c4f1a09d3e26b8f05a7c1d92e4b36a0f8c5d7e19b2a4c6d8e0f1a3b5c7d9"
TEST_PASSPHRASE = "correct horse battery staple"

DTYPES = {
    torch.bfloat16: "BF16", torch.float16: "F16", torch.float32: "F32", torch.float64: "F64",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
    torch.uint8: "U8", torch.bool: "BOOL",
}
for attr, name in (("float8_e4m3fn", "F8_E4M3"), ("float8_e5m2", "F8_E5M2"), ("float4_e2m1fn_x2", "F4")):
    if hasattr(torch, attr):
        DTYPES[getattr(torch, attr)] = name


def raw_bytes(t):
    """The tensor's bytes as stored: little-endian, C order (viewed as bytes, no conversion)."""
    t = t.detach().contiguous().reshape(-1)
    if t.numel() == 0:
        return b""
    return t.view(torch.uint8).numpy().tobytes()


def flatten(tree, prefix=""):
    """TensorDeserializer.tree() for state dicts: nested dicts and lists -> dotted keys."""
    items = tree.items() if isinstance(tree, dict) else enumerate(tree)
    for key, value in items:
        name = f"{prefix}{key}"
        if isinstance(value, torch.Tensor):
            yield name, value
        else:
            yield from flatten(value, name + ".")


def read_back(path, structured=False, encryption=None):
    """What tensorizer reads: [(state-dict key, tensor)]. Root-module names lose their dot."""
    d = TensorDeserializer(path, device="cpu", encryption=encryption, verify_hash=True)
    try:
        if structured:
            out = list(flatten(d.tree()))
        else:
            out = [(k[1:] if k.startswith(".") else k, v) for k, v in d.items()]
        return [(k, v.detach().clone()) for k, v in out]
    finally:
        d.close()


def write_expect(path, tensors):
    def shape(v):  # F4 (float4_e2m1fn_x2) as safetensors writes it: two values per element
        s = list(v.shape)
        if DTYPES[v.dtype] == "F4":
            s[-1] *= 2
        return s
    entries = [{"name": k, "dtype": DTYPES[v.dtype], "shape": shape(v),
                "sha256": hashlib.sha256(raw_bytes(v)).hexdigest()} for k, v in tensors]
    with open(path + ".expect.json", "w") as f:
        json.dump({"tensors": entries}, f, indent=1)
    version = int.from_bytes(open(path, "rb").read(9)[5:9], "little")
    print(f"{os.path.basename(path)}: data version {version}, {len(entries)} tensors")


class Block(torch.nn.Module):
    def __init__(self, dim, dtype):
        super().__init__()
        self.ln = torch.nn.LayerNorm(dim).to(dtype)
        self.q = torch.nn.Linear(dim, dim, bias=False).to(dtype)
        self.mlp = torch.nn.Linear(dim, 4 * dim).to(dtype)
        self.register_buffer("pos", torch.arange(dim, dtype=torch.int64))


class Model(torch.nn.Module):
    def __init__(self, dim=24, vocab=53):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, dim).to(torch.bfloat16)
        self.layers = torch.nn.ModuleList([Block(dim, torch.bfloat16), Block(dim, torch.float16)])
        self.head = torch.nn.Linear(dim, vocab, bias=False)
        self.register_buffer("mask", torch.rand(dim) > 0.5)
        self.register_buffer("q8", torch.randint(-128, 127, (dim, 3), dtype=torch.int8))
        fp8 = [dt for dt in DTYPES if DTYPES[dt].startswith("F8")]
        for i, dt in enumerate(fp8):
            self.register_buffer(f"fp8_{i}", torch.randn(dim, 2).to(dt))


class Plain(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Linear(7, 5)
        self.register_buffer("d", torch.randn(3, 3, dtype=torch.float64))
        self.register_buffer("i", torch.arange(-4, 5, dtype=torch.int32))
        self.register_buffer("u", torch.randint(0, 255, (2, 2, 2), dtype=torch.uint8))


class WithMeta(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.real = torch.nn.Linear(6, 4).to(torch.bfloat16)
        self.ghost = torch.nn.Linear(8, 3, device="meta")
        self.register_buffer("tail", torch.ones(5, dtype=torch.int32))


def write_module(path, module):
    s = TensorSerializer(path)
    s.write_module(module)
    s.close()
    write_expect(path, read_back(path))


class Encrypted(torch.nn.Module):
    def __init__(self, big):
        super().__init__()
        self.embed = torch.nn.Embedding(37, 16).to(torch.bfloat16)
        self.norm = torch.nn.LayerNorm(16).to(torch.float16)
        self.register_buffer("steps", torch.arange(5, dtype=torch.int64))
        self.register_buffer("mask", torch.rand(9) > 0.5)
        if big:  # 2 MiB + 4 KiB: two encryption chunks, the second short
            self.register_buffer("wide", torch.randn(1026, 1024).to(torch.bfloat16))
            self.ghost = torch.nn.Linear(8, 3, device="meta")


def write_encrypted(out):
    key_path = os.path.join(out, "tensorizer-key.tensors")
    s = TensorSerializer(key_path, encryption=EncryptionParams(bytes.fromhex(TEST_KEY)))
    s.write_module(Encrypted(big=True))
    s.close()
    write_expect(key_path, read_back(key_path, encryption=DecryptionParams.from_key(bytes.fromhex(TEST_KEY))))
    pass_path = os.path.join(out, "tensorizer-passphrase.tensors")
    params = EncryptionParams.from_string(TEST_PASSPHRASE, opslimit=EncryptionParams.OpsLimit.MIN,
                                          memlimit=EncryptionParams.MemLimit.MIN)
    s = TensorSerializer(pass_path, encryption=params)
    s.write_module(Encrypted(big=False))
    s.close()
    write_expect(pass_path, read_back(pass_path, encryption=DecryptionParams.from_string(TEST_PASSPHRASE)))


def main():
    if sys.argv[1] == "--encrypted":
        out = sys.argv[2]
        os.makedirs(out, exist_ok=True)
        torch.manual_seed(4321)
        write_encrypted(out)
        return
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(1234)
    if not any(v.startswith("F8") for v in DTYPES.values()):
        print(f"fp8: skipped, torch {torch.__version__} has no float8 types", file=sys.stderr)
    write_module(os.path.join(out, "modules.tensors"), Model())
    write_module(os.path.join(out, "plain.tensors"), Plain())
    write_module(os.path.join(out, "meta.tensors"), WithMeta())
    nested = {"model": {"layers": [{"w": torch.randn(4, 4).to(torch.bfloat16)}, {"w": torch.randn(4, 4)}]},
              "step": torch.tensor([7], dtype=torch.int64)}
    path = os.path.join(out, "nested.tensors")
    s = TensorSerializer(path)
    s.write_state_dict(nested)
    s.close()
    write_expect(path, read_back(path, structured=True))
    long = {"w": torch.randn(3, 5), "long": torch.empty((1 << 32, 0), dtype=torch.uint8)}
    if hasattr(torch, "float4_e2m1fn_x2"):
        long["fp4"] = torch.randint(0, 255, (4, 3), dtype=torch.uint8).view(torch.float4_e2m1fn_x2)
    else:
        print(f"fp4: skipped, torch {torch.__version__} has no float4_e2m1fn_x2", file=sys.stderr)
    path = os.path.join(out, "long.tensors")
    s = TensorSerializer(path)
    s.write_state_dict(long)
    s.close()
    write_expect(path, read_back(path, structured=True))


if __name__ == "__main__":
    main()
