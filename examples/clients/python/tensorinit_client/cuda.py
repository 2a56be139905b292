"""CUDA arenas (stage.target: cuda): the table's cuda_ipc handles opened in this process through
ctypes (libcudart, else the driver's libcuda.so.1), without a copy."""

from __future__ import annotations

import ctypes
from typing import Any, Dict, List, Optional, Tuple

from .handoff import TensorinitError

__all__ = ["CudaIpc", "DeviceBytes"]


class _IpcHandle(ctypes.Structure):  # cudaIpcMemHandle_t / CUipcMemHandle: 64 opaque bytes
    _fields_ = [("reserved", ctypes.c_char * 64)]


def _uuid_string(raw: bytes) -> str:
    h = bytes(raw).hex()
    return "GPU-%s-%s-%s-%s-%s" % (h[:8], h[8:12], h[12:16], h[16:20], h[20:32])


class CudaIpc:
    """Opens the table's cuda_ipc handles in this process, through libcudart when the server's
    environment has it (torch wheels ship it), else through the driver's libcuda.so.1. Each arena is
    opened once; the pointers stay valid while tensorinit (PID 1) lives."""

    _RUNTIMES = ("libcudart.so", "libcudart.so.13", "libcudart.so.12", "libcudart.so.11.0")

    def __init__(self) -> None:
        self._rt: Optional[ctypes.CDLL] = None
        self._drv: Optional[ctypes.CDLL] = None
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

    def _check(self, err: int, what: str) -> None:
        if err != 0:
            raise TensorinitError(69, "%s failed with CUDA error %d" % (what, err))

    def _devices(self) -> List[Tuple[int, str]]:
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
            assert self._drv is not None
            self._check(self._drv.cuDeviceGetCount(ctypes.byref(count)), "cuDeviceGetCount")
            for d in range(count.value):
                dev, uuid = ctypes.c_int(0), ctypes.create_string_buffer(16)
                self._check(self._drv.cuDeviceGet(ctypes.byref(dev), d), "cuDeviceGet")
                self._check(self._drv.cuDeviceGetUuid(uuid, dev), "cuDeviceGetUuid")
                out.append((d, _uuid_string(uuid.raw)))
        return out

    def local_device(self, ipc: Dict[str, Any]) -> int:
        """This process's ordinal for the arena's GPU: by UUID (CUDA_VISIBLE_DEVICES may renumber)."""
        for ordinal, uuid in self._devices():
            if uuid == ipc.get("uuid"):
                return ordinal
        return int(ipc["device"])

    def open(self, ipc: Dict[str, Any]) -> Tuple[int, int]:
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
            return int(ptr.value or 0), device
        assert self._drv is not None
        dev, ctx, dptr = ctypes.c_int(0), ctypes.c_void_p(), ctypes.c_uint64(0)
        self._check(self._drv.cuDeviceGet(ctypes.byref(dev), device), "cuDeviceGet")
        self._check(self._drv.cuDevicePrimaryCtxRetain(ctypes.byref(ctx), dev), "cuDevicePrimaryCtxRetain")
        self._check(self._drv.cuCtxSetCurrent(ctx), "cuCtxSetCurrent")
        self._check(self._drv.cuIpcOpenMemHandle_v2(ctypes.byref(dptr), handle, ctypes.c_uint(1)),
                    "cuIpcOpenMemHandle")
        return int(dptr.value), device


class DeviceBytes:
    """`nbytes` bytes of device memory as a __cuda_array_interface__ (torch.as_tensor wraps it in
    place: no copy)."""

    def __init__(self, ptr: int, nbytes: int) -> None:
        self.__cuda_array_interface__ = {"shape": (nbytes,), "typestr": "|u1", "data": (ptr, False),
                                         "strides": None, "version": 3}
