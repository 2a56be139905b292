"""Model files for the chaos harness, and the bytes every tensor must have.

A model is a directory (or one file) plus its *expected* tensors: name -> (dtype, shape, sha256)
computed here, independently of tensorinit, when the files are written. Kinds:
  custom      safetensors written here: random dtypes (all of the safetensors vocabulary), odd
              shapes (scalars, zero-size), metadata, 1..4 shards with model.safetensors.index.json
  synth       `tensorinit synth` safetensors (bf16/f16/f32, 1..3 shards)
  tensorizer  `tensorinit synth --format tensorizer`; expected bytes from the safetensors synth of
              the same size, dtype and seed (synth writes the same tensors with the same values)
  fixture     tests/fixtures tensorizer files written by the real tensorizer (plain v2, encrypted
              v4 with a meta tensor, passphrase v3) with their .expect.json
  packed      `tensorinit pack` of a custom single-file model (random frame size, --split-bytes)
Models are cached in WORK/models/<key> by their parameters, so scenarios share them.
"""
import hashlib
import json
import os
import random
import shutil
import struct
import subprocess

DTYPES = {"BOOL": 1, "U8": 1, "I8": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2, "I32": 4, "U32": 4,
          "F32": 4, "F64": 8, "I64": 8, "U64": 8, "F8_E4M3": 1, "F8_E5M2": 1}
FIXTURE_KEY = "5be7c4f1a09d3e26b8f05a7c1d92e4b36a0f8c5d7e19b2a4c6d8e0f1a3b5c7d9"  # make_tensorizer_fixtures.py
FIXTURE_PASSPHRASE = "correct horse battery staple"
FLIP = bytes(i ^ 0x01 for i in range(256))
LOW_BIT = bytes(i & 0x01 for i in range(256))


def sha(data):
    return hashlib.sha256(data).hexdigest()


def file_sha(path):
    with open(path, "rb") as f:
        return sha(f.read())


def parse_safetensors(path):
    """name -> (dtype, shape, sha256) of a safetensors file, parsed here."""
    with open(path, "rb") as f:
        return parse_safetensors_bytes(f.read())


def parse_safetensors_bytes(data):
    """name -> (dtype, shape, sha256) of a safetensors file's bytes."""
    (n,) = struct.unpack_from("<Q", data, 0)
    header = json.loads(data[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        out[name] = (info["dtype"], list(info["shape"]), sha(data[8 + n + begin:8 + n + end]))
    return out


def safetensors_bytes(tensors, metadata=None):
    """tensors: list of (name, dtype, shape, bytes) -> the file's bytes."""
    header, offset = {}, 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, data in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(t[3] for t in tensors)


def random_tensor_bytes(rng, dtype, count):
    if dtype == "BOOL":
        return rng.randbytes(count).translate(LOW_BIT)
    return rng.randbytes(count * DTYPES[dtype])


def random_shape(rng, budget_elems):
    r = rng.random()
    if r < 0.05:
        return []  # a scalar
    if r < 0.08:
        return [0, rng.randint(1, 8)]  # zero elements
    ndim = rng.randint(1, 4)
    shape = []
    left = max(1, budget_elems)
    for _ in range(ndim - 1):
        d = rng.randint(1, max(1, min(97, left)))
        shape.append(d)
        left = max(1, left // d)
    shape.append(max(1, left))
    return shape


def elems(shape):
    n = 1
    for d in shape:
        n *= d
    return n


class Model:
    """path: what the manifest's source path names; files: the file names under `root` (for
    remote sources and mutations); expected: name -> (dtype, shape, sha); extra: manifest lines."""

    def __init__(self, key, kind, root, path, files, expected, model_lines=(), fmt="auto"):
        self.key, self.kind, self.root, self.path, self.files = key, kind, root, path, files
        self.expected, self.model_lines, self.format = expected, list(model_lines), fmt

    @property
    def bytes(self):
        return sum(os.path.getsize(os.path.join(self.root, f)) for f in self.files)

    def file_shas(self):
        return {f: file_sha(os.path.join(self.root, f)) for f in self.files}


class ModelStore:
    def __init__(self, work, tensorinit, fixtures):
        self.dir = os.path.join(work, "models")
        self.tensorinit, self.fixtures = tensorinit, fixtures
        os.makedirs(self.dir, exist_ok=True)
        self.cache = {}

    def get(self, spec):
        """spec: a tuple (kind, params...) from scenario.random_model_spec."""
        key = "-".join(str(p) for p in spec).replace("/", "_").replace(" ", "")
        if key not in self.cache:
            root = os.path.join(self.dir, key)
            shutil.rmtree(root, ignore_errors=True)
            os.makedirs(root)
            self.cache[key] = getattr(self, "_" + spec[0].replace("-", "_"))(key, root, *spec[1:])
        return self.cache[key]

    def copy(self, model, dest):
        """A private copy of a model (for scenarios that change its files)."""
        shutil.rmtree(dest, ignore_errors=True)
        shutil.copytree(model.root, dest)
        path = dest if model.path == model.root else os.path.join(dest, os.path.basename(model.path))
        return Model(model.key, model.kind, dest, path, list(model.files), dict(model.expected), model.model_lines,
                     model.format)

    def _synth(self, key, root, size_kib, dtype, shards, seed, fmt="safetensors"):
        args = [self.tensorinit, "synth", "--size", f"{size_kib}KiB", "--dtype", dtype, "--shards", str(shards),
                "--seed", str(seed), "--format", fmt, root]
        subprocess.run(args, check=True, capture_output=True, timeout=120)
        files = sorted(os.listdir(root))
        if fmt == "safetensors":
            expected = {}
            for f in files:
                if f.endswith(".safetensors"):
                    expected.update(parse_safetensors(os.path.join(root, f)))
            return Model(key, "synth", root, root, files, expected)
        twin = self.get(("synth", size_kib, dtype, shards, seed))
        return Model(key, "tensorizer", root, root, files, dict(twin.expected))

    def _tensorizer(self, key, root, size_kib, dtype, shards, seed):
        return self._synth(key, root, size_kib, dtype, shards, seed, "tensorizer")

    def _custom_single(self, key, root, seed):
        return self._custom(key, root, seed, single=True)

    def _custom(self, key, root, seed, single=False):
        """Model `seed` of a fixed family: sizes 4 KiB to 4 MiB, 1-24 tensors, 1-4 shards."""
        rng = random.Random(seed)
        total_kib = rng.choice([4, 16, 64, 256, 1024, 2048, 4096] if seed >= 120 else [4, 16, 64, 256, 1024])
        ntensors, shards, metadata = rng.randint(1, 24), rng.choice([1, 1, 2, 3, 4]), rng.random() < 0.5
        names = set()
        tensors = []
        for i in range(ntensors):
            dtype = rng.choice(sorted(DTYPES))
            shape = random_shape(rng, max(1, total_kib * 1024 // ntensors // DTYPES[dtype]))
            name = rng.choice(["layers.{}.w", "h.{}.attn.c_proj.bias", "t{}", "model.embed_{}.weight",
                               "blk.{}.ünï", "x.{}.y.z"]).format(i)
            if name in names:
                name += f".{i}"
            names.add(name)
            tensors.append((name, dtype, shape, random_tensor_bytes(rng, dtype, elems(shape))))
        meta = {"format": "pt", "seed": str(seed)} if metadata else None
        expected = {t[0]: (t[1], t[2], sha(t[3])) for t in tensors}
        if shards == 1 or single:
            with open(os.path.join(root, "model.safetensors"), "wb") as f:
                f.write(safetensors_bytes(tensors, meta))
            return Model(key, "custom", root, root, ["model.safetensors"], expected)
        files, weight_map = [], {}
        per = -(-len(tensors) // shards)
        for s in range(shards):
            part = tensors[s * per:(s + 1) * per]
            if not part:
                continue
            name = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
            with open(os.path.join(root, name), "wb") as f:
                f.write(safetensors_bytes(part, meta))
            files.append(name)
            weight_map.update({t[0]: name for t in part})
        with open(os.path.join(root, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": sum(len(t[3]) for t in tensors)}, "weight_map": weight_map}, f)
        return Model(key, "custom", root, root, files + ["model.safetensors.index.json"], expected)

    def _packed(self, key, root, seed):
        rng = random.Random(seed)
        frame_kib, split = rng.choice([64, 128, 256, 1024]), rng.random() < 0.5
        plain = self.get(("custom-single", 1000 + seed))
        out = os.path.join(root, "model.safetensors.zst")
        args = [self.tensorinit, "pack", os.path.join(plain.root, "model.safetensors"), out,
                "--frame-size", f"{frame_kib}KiB"] + (["--split-bytes"] if split else [])
        subprocess.run(args, check=True, capture_output=True, timeout=120)
        return Model(key, "packed", root, root, ["model.safetensors.zst"], dict(plain.expected), fmt="packed")

    def _fixture(self, key, root, which):
        name = {"plain": "tiny-mixed.tensors", "key": "tensorizer-key.tensors",
                "passphrase": "tensorizer-passphrase.tensors", "f16": "tiny-f16.safetensors"}[which]
        shutil.copy(os.path.join(self.fixtures, name), os.path.join(root, name))
        with open(os.path.join(self.fixtures, name + ".expect.json")) as f:
            expected = {t["name"]: (t["dtype"], t["shape"], t["sha256"]) for t in json.load(f)["tensors"]}
        lines = {"key": ["  key: ${CHAOS_TZ_KEY}"], "passphrase": ["  passphrase: ${CHAOS_TZ_PASSPHRASE}"]}.get(which, [])
        return Model(key, "fixture-" + which, root, os.path.join(root, name), [name], expected, lines)

    def variant(self, model):
        """A second version of a safetensors model: the same headers (so the same index), every
        data byte flipped in its lowest bit. Returns (expected, {file: bytes}) to write mid-load."""
        out, expected = {}, dict(model.expected)
        for f in model.files:
            with open(os.path.join(model.root, f), "rb") as fh:
                data = bytearray(fh.read())
            if f.endswith(".safetensors"):
                (n,) = struct.unpack_from("<Q", data, 0)
                body = bytes(data[8 + n:]).translate(FLIP)  # BOOL stays 0/1
                out[f] = bytes(data[:8 + n]) + body
        expected.update(parse_bytes_expected(out))
        return expected, out


def parse_bytes_expected(files):
    """name -> (dtype, shape, sha256) over every file's bytes (file name -> bytes)."""
    expected = {}
    for data in files.values():
        expected.update(parse_safetensors_bytes(data))
    return expected
