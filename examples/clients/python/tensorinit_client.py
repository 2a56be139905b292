"""Client side of tensorinit's handoff: wait until the weights are staged, then map every host
tensor from its shared-memory arena without copying.

Standard library only; numpy and torch are used when installed. Tensors of a cuda arena
(stage.target: cuda) are opened through their CUDA IPC handles (ctypes: libcudart, else
libcuda.so.1) and come back as torch CUDA tensors over tensorinit's device memory, without a copy.

    import tensorinit_client as tc
    weights = tc.wait_and_open()            # blocks on $TENSORINIT_SOCKET (or reads $TENSORINIT_TABLE)
    w = weights.tensor("embed.weight")      # torch.Tensor, else numpy.ndarray, else memoryview
    result = weights.load_into_module(model)  # model built on the meta device
    print(result.missing, result.unexpected)

Socket protocol (docs/init.md): connect to $TENSORINIT_SOCKET; tensorinit answers once staging
is over with one header line and closes:
    "ready <n>\\n" followed by n bytes of the tensor table (JSON)
    "error <code> <message>\\n"
Extra "key=value" tokens after the known header fields are reserved; they are ignored here.
"""

import collections
import ctypes
import json
import mmap
import os
import signal
import socket
import threading
import time

try:
    import numpy
except ImportError:  # pragma: no cover - depends on the environment
    numpy = None
try:
    import torch
except ImportError:  # pragma: no cover
    torch = None

__all__ = ["TensorinitError", "wait_ready", "read_table", "ReadySignal", "StagedWeights",
           "wait_and_open", "LoadResult", "CudaIpc"]


class TensorinitError(RuntimeError):
    """Staging failed or tensorinit is stopping; `code` is tensorinit's exit code."""

    def __init__(self, code, message):
        super().__init__("tensorinit: %s (code %d)" % (message, code))
        self.code = code


def _parse_answer(data):
    header, _, rest = data.partition(b"\n")
    fields = header.decode("utf-8", "replace").split(" ")
    if fields[0] == "ready" and len(fields) >= 2:
        size = int(fields[1])
        if len(rest) < size:
            raise TensorinitError(70, "short answer on the socket: %d of %d bytes" % (len(rest), size))
        return json.loads(rest[:size])
    if fields[0] == "error" and len(fields) >= 2:
        raise TensorinitError(int(fields[1]), " ".join(fields[2:]))
    raise TensorinitError(70, "unexpected answer on the socket: %r" % header[:80])


def wait_ready(socket_path=None, timeout=None):
    """Blocks until tensorinit has staged the weights; returns the tensor table (a dict).

    Raises TensorinitError when staging failed, TimeoutError after `timeout` seconds."""
    path = socket_path or os.environ["TENSORINIT_SOCKET"]
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(path)
            break
        except (FileNotFoundError, ConnectionRefusedError):  # not listening yet
            sock.close()
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError("no tensorinit socket at %s" % path)
            time.sleep(0.01)
    with sock:
        if deadline is not None:
            sock.settimeout(max(0.0, deadline - time.monotonic()))
        chunks = []
        try:
            while True:
                chunk = sock.recv(1 << 20)
                if not chunk:
                    break
                chunks.append(chunk)
        except socket.timeout:
            raise TimeoutError("weights not ready within %s s" % timeout) from None
    return _parse_answer(b"".join(chunks))


def read_table(path=None):
    """The tensor table written by tensorinit ($TENSORINIT_TABLE), e.g. in exec mode."""
    with open(path or os.environ["TENSORINIT_TABLE"], "rb") as f:
        return json.load(f)


class ReadySignal:
    """For servers that prefer the signal: create it first thing (before slow imports), so the
    handler is in place when tensorinit sends `handoff.signal` (tensorinit waits until the
    server catches the signal before sending it)."""

    def __init__(self, signum=signal.SIGUSR1):
        self._event = threading.Event()
        signal.signal(signum, lambda *_: self._event.set())

    def wait(self, timeout=None):
        return self._event.wait(timeout)


# safetensors dtype -> (numpy dtype name, torch dtype attribute, bytes per element)
_DTYPES = {
    "BOOL": ("bool", "bool", 1), "U8": ("uint8", "uint8", 1), "I8": ("int8", "int8", 1),
    "I16": ("int16", "int16", 2), "U16": ("uint16", "uint16", 2), "F16": ("float16", "float16", 2),
    "BF16": ("uint16", "bfloat16", 2), "I32": ("int32", "int32", 4), "U32": ("uint32", "uint32", 4),
    "F32": ("float32", "float32", 4), "F64": ("float64", "float64", 8), "I64": ("int64", "int64", 8),
    "U64": ("uint64", "uint64", 8), "F8_E4M3": ("uint8", "float8_e4m3fn", 1),
    "F8_E5M2": ("uint8", "float8_e5m2", 1),
}

LoadResult = collections.namedtuple("LoadResult", ["missing", "unexpected"])


class _IpcHandle(ctypes.Structure):  # cudaIpcMemHandle_t / CUipcMemHandle: 64 opaque bytes
    _fields_ = [("reserved", ctypes.c_char * 64)]


def _uuid_string(raw):
    h = bytes(raw).hex()
    return "GPU-%s-%s-%s-%s-%s" % (h[:8], h[8:12], h[12:16], h[16:20], h[20:32])


class CudaIpc:
    """Opens the table's cuda_ipc handles in this process, through libcudart when the server's
    environment has it (torch wheels ship it), else through the driver's libcuda.so.1. Each arena is
    opened once; the pointers stay valid while tensorinit (PID 1) lives."""

    _RUNTIMES = ("libcudart.so", "libcudart.so.13", "libcudart.so.12", "libcudart.so.11.0")

    def __init__(self):
        self._rt = self._drv = None
        for name in self._RUNTIMES:
            try:
                self._rt = ctypes.CDLL(name)
                break
            except OSError:
                continue
        if self._rt is None:
            try:
                self._drv = ctypes.CDLL("libcuda.so.1")
            except OSError:
                raise TensorinitError(69, "cuda arenas need libcudart or libcuda.so.1 (the NVIDIA driver)")
            self._check(self._drv.cuInit(0), "cuInit")

    def _check(self, err, what):
        if err != 0:
            raise TensorinitError(69, "%s failed with CUDA error %d" % (what, err))

    def _devices(self):
        """[(ordinal, uuid string)] of the devices this process sees."""
        count = ctypes.c_int(0)
        out = []
        if self._rt is not None:
            self._check(self._rt.cudaGetDeviceCount(ctypes.byref(count)), "cudaGetDeviceCount")
            props = getattr(self._rt, "cudaGetDeviceProperties_v2", None) or self._rt.cudaGetDeviceProperties
            for d in range(count.value):
                buf = ctypes.create_string_buffer(8192)  # name[256] then the 16-byte uuid, in every release
                self._check(props(buf, d), "cudaGetDeviceProperties")
                out.append((d, _uuid_string(buf.raw[256:272])))
        else:
            self._check(self._drv.cuDeviceGetCount(ctypes.byref(count)), "cuDeviceGetCount")
            for d in range(count.value):
                dev, uuid = ctypes.c_int(0), ctypes.create_string_buffer(16)
                self._check(self._drv.cuDeviceGet(ctypes.byref(dev), d), "cuDeviceGet")
                self._check(self._drv.cuDeviceGetUuid(uuid, dev), "cuDeviceGetUuid")
                out.append((d, _uuid_string(uuid.raw)))
        return out

    def local_device(self, ipc):
        """This process's ordinal for the arena's GPU: by UUID (CUDA_VISIBLE_DEVICES may renumber)."""
        for ordinal, uuid in self._devices():
            if uuid == ipc.get("uuid"):
                return ordinal
        return int(ipc["device"])

    def open(self, ipc):
        """(device pointer as int, local device ordinal) for one arena's ipc object."""
        if ipc.get("kind") != "cuda_ipc":
            raise TensorinitError(65, "unknown ipc kind %r" % ipc.get("kind"))
        handle = _IpcHandle()
        handle.reserved = bytes.fromhex(ipc["handle"])
        device = self.local_device(ipc)
        if self._rt is not None:
            ptr = ctypes.c_void_p()
            self._check(self._rt.cudaSetDevice(device), "cudaSetDevice")
            self._check(self._rt.cudaIpcOpenMemHandle(ctypes.byref(ptr), handle, ctypes.c_uint(1)),
                        "cudaIpcOpenMemHandle")  # 1: cudaIpcMemLazyEnablePeerAccess
            return ptr.value, device
        dev, ctx, ptr = ctypes.c_int(0), ctypes.c_void_p(), ctypes.c_uint64(0)
        self._check(self._drv.cuDeviceGet(ctypes.byref(dev), device), "cuDeviceGet")
        self._check(self._drv.cuDevicePrimaryCtxRetain(ctypes.byref(ctx), dev), "cuDevicePrimaryCtxRetain")
        self._check(self._drv.cuCtxSetCurrent(ctx), "cuCtxSetCurrent")
        self._check(self._drv.cuIpcOpenMemHandle_v2(ctypes.byref(ptr), handle, ctypes.c_uint(1)),
                    "cuIpcOpenMemHandle")
        return ptr.value, device


class _DeviceBytes:
    """`nbytes` bytes of device memory as a __cuda_array_interface__ (torch.as_tensor wraps it in
    place: no copy)."""

    def __init__(self, ptr, nbytes):
        self.__cuda_array_interface__ = {"shape": (nbytes,), "typestr": "|u1", "data": (ptr, False),
                                         "strides": None, "version": 3}


def _numel(shape):
    n = 1
    for d in shape:
        n *= d
    return n


class StagedWeights:
    """The staged tensors of one table, mapped copy-on-write from their /dev/shm arenas: no copy
    is made (a page is copied only if the server writes to it; the arena never changes)."""

    def __init__(self, table):
        self.table = table
        self._maps = {}
        self._device_arenas = {}  # index -> ipc object; opened on first use (CudaIpc)
        self._device_bases = {}   # index -> (pointer, local device)
        self._ipc = None
        for arena in table.get("arenas", []):
            if "ipc" in arena:
                self._device_arenas[arena["index"]] = arena["ipc"]
                continue
            if arena.get("device") != "host" or "path" not in arena:
                continue
            fd = os.open(arena["path"], os.O_RDONLY | os.O_CLOEXEC)
            try:
                size = arena["bytes"] or os.fstat(fd).st_size
                self._maps[arena["index"]] = mmap.mmap(fd, size, access=mmap.ACCESS_COPY) if size else b""
            finally:
                os.close(fd)
        self._entries = {t["name"]: t for t in table.get("tensors", [])}

    def names(self):
        return list(self._entries)

    def on_device(self, name):
        """True when the tensor lives in GPU memory (target cuda)."""
        return self._entries[name].get("arena") in self._device_arenas

    def _device_tensor(self, name):
        entry = self._entries[name]
        index = entry["arena"]
        if index not in self._device_bases:
            if self._ipc is None:
                self._ipc = CudaIpc()
            self._device_bases[index] = self._ipc.open(self._device_arenas[index])
        base, device = self._device_bases[index]
        _, torch_name, _ = _DTYPES[entry["dtype"]]
        dtype = getattr(torch, torch_name, None)
        if dtype is None:
            raise TypeError("%s: dtype %s is not supported by torch %s" % (name, entry["dtype"], torch.__version__))
        if entry["bytes"] == 0:
            return torch.empty(entry["shape"], dtype=dtype, device="cuda:%d" % device)
        raw = torch.as_tensor(_DeviceBytes(base + entry["offset"], entry["bytes"]), device="cuda:%d" % device)
        return raw.view(dtype).view(entry["shape"])

    def _locate(self, name):
        entry = self._entries[name]
        if entry.get("arena") in self._device_arenas:
            raise TypeError("%s is in GPU memory: use torch(name)" % name)
        if entry.get("arena") not in self._maps:
            raise KeyError("%s is not in a host arena" % name)
        buf = self._maps[entry["arena"]]
        if entry["offset"] + entry["bytes"] > len(buf):
            raise ValueError("%s: bytes %d+%d beyond its arena" % (name, entry["offset"], entry["bytes"]))
        return entry, buf

    def raw(self, name):
        """The tensor's bytes as a memoryview into the arena (standard library only)."""
        entry, buf = self._locate(name)
        return memoryview(buf)[entry["offset"]:entry["offset"] + entry["bytes"]]

    def numpy(self, name):
        """numpy view; BF16 and F8 come as raw uint16/uint8 (numpy has no such dtype)."""
        if numpy is None:
            raise RuntimeError("numpy is not installed")
        entry, buf = self._locate(name)
        np_name, _, width = _DTYPES[entry["dtype"]]
        count = entry["bytes"] // width
        return numpy.frombuffer(buf, dtype=numpy.dtype(np_name).newbyteorder("<"), count=count,
                                offset=entry["offset"]).reshape(entry["shape"])

    def torch(self, name):
        """torch view sharing the arena's memory: torch.frombuffer for host arenas, a CUDA tensor
        over the IPC-opened device memory (no copy) for cuda arenas."""
        if torch is None:
            raise RuntimeError("torch is not installed")
        if self.on_device(name):
            return self._device_tensor(name)
        entry, buf = self._locate(name)
        _, torch_name, width = _DTYPES[entry["dtype"]]
        dtype = getattr(torch, torch_name, None)
        if dtype is None:
            raise TypeError("%s: dtype %s is not supported by torch %s" % (name, entry["dtype"], torch.__version__))
        count = entry["bytes"] // width
        if count == 0:
            return torch.empty(entry["shape"], dtype=dtype)
        return torch.frombuffer(buf, dtype=dtype, count=count, offset=entry["offset"]).view(entry["shape"])

    def tensor(self, name):
        """The best view available: torch, else numpy, else the raw memoryview."""
        if torch is not None:
            try:
                return self.torch(name)
            except TypeError:
                if self.on_device(name):
                    raise
        if numpy is not None:
            return self.numpy(name)
        return self.raw(name)

    def load_into_module(self, module):
        """Replaces each parameter and buffer of `module` (typically built on the meta device)
        with the staged tensor of the same state-dict key. Returns LoadResult(missing,
        unexpected): keys of the module with no staged tensor, staged tensors the module lacks.
        Raises ValueError when a shape differs."""
        expected = list(module.state_dict(keep_vars=True).keys())
        staged = set(self._entries)
        for key in expected:
            if key not in staged:
                continue
            value = self.torch(key)
            owner_path, _, attr = key.rpartition(".")
            owner = module.get_submodule(owner_path) if owner_path else module
            if attr in owner._parameters and owner._parameters[attr] is not None:
                old = owner._parameters[attr]
                if tuple(old.shape) != tuple(value.shape):
                    raise ValueError("%s: module expects shape %s, staged is %s" % (key, tuple(old.shape), tuple(value.shape)))
                grad = old.requires_grad and value.is_floating_point()
                owner._parameters[attr] = torch.nn.Parameter(value, requires_grad=grad)
            elif attr in owner._buffers:
                old = owner._buffers[attr]
                if old is not None and tuple(old.shape) != tuple(value.shape):
                    raise ValueError("%s: module expects shape %s, staged is %s" % (key, tuple(old.shape), tuple(value.shape)))
                owner._buffers[attr] = value
        return LoadResult(missing=sorted(set(expected) - staged), unexpected=sorted(staged - set(expected)))


def wait_and_open(timeout=None):
    """Signal mode ($TENSORINIT_SOCKET set): blocks until ready. Exec mode: the table is ready."""
    if os.environ.get("TENSORINIT_SOCKET"):
        return StagedWeights(wait_ready(timeout=timeout))
    return StagedWeights(read_table())
