"""The staged tensors of one table as zero-copy views: host arenas in /dev/shm and, for
`stage.target: pagecache`, the source files themselves, both mapped copy-on-write (a page is
copied only if the server writes to it; the arena or file never changes); cuda arenas through
their IPC handles (cuda.py)."""

from __future__ import annotations

import mmap
import os
from typing import Any, Dict, List, NamedTuple, Optional, Tuple, Union

from . import _optional
from .cuda import CudaIpc, DeviceBytes
from .handoff import Table

__all__ = ["StagedWeights", "LoadResult", "DTYPES"]

# safetensors dtype -> (numpy dtype name, torch dtype attribute, bytes per element)
DTYPES: Dict[str, Tuple[str, str, int]] = {
    "BOOL": ("bool", "bool", 1), "U8": ("uint8", "uint8", 1), "I8": ("int8", "int8", 1),
    "I16": ("int16", "int16", 2), "U16": ("uint16", "uint16", 2), "F16": ("float16", "float16", 2),
    "BF16": ("uint16", "bfloat16", 2), "I32": ("int32", "int32", 4), "U32": ("uint32", "uint32", 4),
    "F32": ("float32", "float32", 4), "F64": ("float64", "float64", 8), "I64": ("int64", "int64", 8),
    "U64": ("uint64", "uint64", 8), "F8_E4M3": ("uint8", "float8_e4m3fn", 1),
    "F8_E5M2": ("uint8", "float8_e5m2", 1),
}


class LoadResult(NamedTuple):
    """What load_into_module did not match: keys of the module with no staged tensor (missing),
    staged tensors the module has no place for (unexpected)."""
    missing: List[str]
    unexpected: List[str]


Buffer = Union[mmap.mmap, bytes]


def _map_readonly(path: str, size: Optional[int] = None) -> Buffer:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        length = size or os.fstat(fd).st_size
        return mmap.mmap(fd, length, access=mmap.ACCESS_COPY) if length else b""
    finally:
        os.close(fd)


def _numel(shape: List[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


class StagedWeights:
    """The tensors of one table. Not thread-safe while the first view of a file or a cuda arena is
    being opened; views themselves may be read from any thread."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self._maps: Dict[int, Buffer] = {}       # host arena index -> mapping
        self._files: Dict[str, Buffer] = {}      # pagecache: source file -> mapping (on first use)
        self._device_arenas: Dict[int, Dict[str, Any]] = {}  # index -> ipc object (opened on first use)
        self._device_bases: Dict[int, Tuple[int, int]] = {}  # index -> (pointer, local device)
        self._ipc: Optional[CudaIpc] = None
        for arena in table.get("arenas", []):
            if "ipc" in arena:
                self._device_arenas[arena["index"]] = arena["ipc"]
            elif arena.get("device") == "host" and "path" in arena:
                self._maps[arena["index"]] = _map_readonly(arena["path"], arena["bytes"])
        self._entries: Dict[str, Dict[str, Any]] = {t["name"]: t for t in table.get("tensors", [])}

    def names(self) -> List[str]:
        """Every tensor of the table, in table order."""
        return list(self._entries)

    def on_device(self, name: str) -> bool:
        """True when the tensor lives in GPU memory (target cuda)."""
        return self._entries[name].get("arena") in self._device_arenas

    def _check_size(self, name: str, entry: Dict[str, Any]) -> int:
        """Element count; the table's bytes must be exactly shape x element width."""
        if entry["dtype"] not in DTYPES:
            raise TypeError("%s: dtype %s is not supported by this client" % (name, entry["dtype"]))
        width = DTYPES[entry["dtype"]][2]
        count = _numel(entry["shape"])
        if count * width != entry["bytes"]:
            raise ValueError("%s: %d bytes do not hold shape %s of %s" % (name, entry["bytes"], entry["shape"], entry["dtype"]))
        return count

    def _locate(self, name: str) -> Tuple[Dict[str, Any], Buffer, int]:
        """(entry, mapping, offset of the tensor in the mapping) for a tensor in host memory."""
        entry = self._entries[name]
        if "file" in entry:  # stage.target: pagecache: the file is in the page cache; map it
            path = entry["file"]
            if path not in self._files:
                self._files[path] = _map_readonly(path)
            buf, offset = self._files[path], entry["file_offset"]
        elif entry.get("arena") in self._device_arenas:
            raise TypeError("%s is in GPU memory: use torch(name)" % name)
        elif entry.get("arena") in self._maps:
            buf, offset = self._maps[entry["arena"]], entry["offset"]
        else:
            raise KeyError("%s is not in a host arena" % name)
        if offset < 0 or offset + entry["bytes"] > len(buf):
            raise ValueError("%s: bytes %d+%d beyond its %s" % (name, offset, entry["bytes"],
                                                               "file" if "file" in entry else "arena"))
        return entry, buf, offset

    def raw(self, name: str) -> memoryview:
        """The tensor's bytes as a memoryview into the arena or file (standard library only)."""
        entry, buf, offset = self._locate(name)
        return memoryview(buf)[offset:offset + entry["bytes"]]

    def numpy(self, name: str) -> Any:
        """numpy view; BF16 and F8 come as raw uint16/uint8 (numpy has no such dtype)."""
        np = _optional.numpy
        if np is None:
            raise RuntimeError("numpy is not installed")
        entry, buf, offset = self._locate(name)
        count = self._check_size(name, entry)
        np_name = DTYPES[entry["dtype"]][0]
        return np.frombuffer(buf, dtype=np.dtype(np_name).newbyteorder("<"), count=count,
                             offset=offset).reshape(entry["shape"])

    def _torch_dtype(self, name: str, entry: Dict[str, Any]) -> Any:
        torch = _optional.torch
        assert torch is not None
        dtype = getattr(torch, DTYPES[entry["dtype"]][1], None) if entry["dtype"] in DTYPES else None
        if dtype is None:
            raise TypeError("%s: dtype %s is not supported by torch %s" % (name, entry["dtype"], torch.__version__))
        return dtype

    def _device_tensor(self, name: str) -> Any:
        torch = _optional.torch
        assert torch is not None
        entry = self._entries[name]
        index = entry["arena"]
        dtype = self._torch_dtype(name, entry)
        self._check_size(name, entry)
        if index not in self._device_bases:
            if self._ipc is None:
                self._ipc = CudaIpc()
            self._device_bases[index] = self._ipc.open(self._device_arenas[index])
        base, device = self._device_bases[index]
        if entry["bytes"] == 0:
            return torch.empty(entry["shape"], dtype=dtype, device="cuda:%d" % device)
        raw = torch.as_tensor(DeviceBytes(base + entry["offset"], entry["bytes"]), device="cuda:%d" % device)
        return raw.view(dtype).view(entry["shape"])

    def torch(self, name: str) -> Any:
        """torch view sharing the arena's (or the page-cached file's) memory: torch.frombuffer over
        the mapping, no copy; for cuda arenas a CUDA tensor over the IPC-opened device memory."""
        torch = _optional.torch
        if torch is None:
            raise RuntimeError("torch is not installed")
        if self.on_device(name):
            return self._device_tensor(name)
        entry, buf, offset = self._locate(name)
        dtype = self._torch_dtype(name, entry)
        count = self._check_size(name, entry)
        if count == 0:
            return torch.empty(entry["shape"], dtype=dtype)
        return torch.frombuffer(buf, dtype=dtype, count=count, offset=offset).view(entry["shape"])

    def tensor(self, name: str) -> Any:
        """The best view available: torch, else numpy, else the raw memoryview."""
        if _optional.torch is not None:
            try:
                return self.torch(name)
            except TypeError:
                if self.on_device(name):
                    raise
        if _optional.numpy is not None:
            return self.numpy(name)
        return self.raw(name)

    def load_into_module(self, module: Any) -> LoadResult:
        """Replaces each parameter and buffer of `module` (typically built on the meta device)
        with the staged tensor of the same state-dict key, without a copy. Returns
        LoadResult(missing, unexpected): keys of the module with no staged tensor, staged tensors
        the module lacks. Raises ValueError when a shape differs. Tied parameters (one tensor
        under several keys, e.g. lm_head.weight and embed_tokens.weight) stay tied."""
        torch = _optional.torch
        if torch is None:
            raise RuntimeError("torch is not installed")
        expected = list(module.state_dict(keep_vars=True).keys())
        # Keys that name one tensor object (tied weights) form one group, filled once.
        groups: Dict[int, List[Tuple[str, Any, str]]] = {}
        for key in expected:
            owner_path, _, attr = key.rpartition(".")
            owner = module.get_submodule(owner_path) if owner_path else module
            old = owner._parameters.get(attr) if attr in owner._parameters else owner._buffers.get(attr)
            groups.setdefault(id(old) if old is not None else id(key), []).append((key, owner, attr))
        staged = set(self._entries)
        filled = set()
        for members in groups.values():
            source = next((key for key, _, _ in members if key in staged), None)
            if source is None:
                continue
            value = self.torch(source)
            replacement = None
            for key, owner, attr in members:
                is_param = attr in owner._parameters and owner._parameters[attr] is not None
                old = owner._parameters[attr] if is_param else owner._buffers.get(attr)
                if old is not None and tuple(old.shape) != tuple(value.shape):
                    raise ValueError("%s: module expects shape %s, staged is %s" % (key, tuple(old.shape), tuple(value.shape)))
                if is_param:
                    if replacement is None:
                        grad = old.requires_grad and value.is_floating_point()
                        replacement = torch.nn.Parameter(value, requires_grad=grad)
                    owner._parameters[attr] = replacement
                else:
                    owner._buffers[attr] = value
                filled.add(key)
        return LoadResult(missing=sorted(set(expected) - filled), unexpected=sorted(staged - set(expected)))
