"""NumPy / CuPy selection.

Layers pick their array module from the arrays they receive (``array_module(x)``), never from a
global flag. Importing this module does not import CuPy or touch a GPU; ``has_cupy_gpu()`` does,
and only when asked.
"""
from __future__ import annotations

import contextlib
import functools
import importlib.util
import threading

import numpy as np

from .errors import BackendError


def _cupy():
    import cupy  # noqa: PLC0415 - deliberately lazy

    return cupy


def cupy_installed() -> bool:
    return importlib.util.find_spec("cupy") is not None


@functools.lru_cache(maxsize=1)
def has_cupy_gpu() -> bool:
    """True when CuPy is installed and at least one CUDA device answers."""
    if not cupy_installed():
        return False
    try:
        return _cupy().cuda.runtime.getDeviceCount() > 0
    except Exception:  # no driver, no device: a CPU machine with CuPy installed
        return False


def is_cupy_array(x) -> bool:
    return type(x).__module__.startswith("cupy")


def array_module(*arrays):
    """``numpy`` or ``cupy``, whichever the arrays live in (NumPy when none is a CuPy array)."""
    for a in arrays:
        if a is not None and is_cupy_array(a):
            return _cupy()
    return np


def is_numpy(xp) -> bool:
    return xp is np


def to_host(x) -> np.ndarray:
    """A NumPy copy (or the array itself when it already is NumPy)."""
    return x.get() if is_cupy_array(x) else np.asarray(x)


def resolve(device: str = "auto"):
    """The array module for ``device``: 'cpu', 'gpu' or 'auto' (GPU when CuPy sees one)."""
    if device == "cpu":
        return np
    if device == "gpu":
        if not has_cupy_gpu():
            raise BackendError("device 'gpu' was requested but CuPy sees no CUDA GPU; "
                               "install hugectr-core[gpu] on a machine with an NVIDIA GPU, or use device='cpu'")
        return _cupy()
    if device == "auto":
        return _cupy() if has_cupy_gpu() else np
    raise BackendError(f"unknown device '{device}': use 'cpu', 'gpu' or 'auto'")


def device_name(xp) -> str:
    if is_numpy(xp):
        return "cpu (NumPy)"
    props = xp.cuda.runtime.getDeviceProperties(xp.cuda.Device().id)
    name = props["name"]
    return f"gpu {name.decode() if isinstance(name, bytes) else name} (CuPy)"


_DEVICE_THREAD = threading.local()  # set in the worker threads of a pool that drives several GPUs


@contextlib.contextmanager
def one_of_several_device_threads():
    """Marks the calling thread, for the block, as one of the threads that drive several GPUs of this
    process (``vvgpu=[[0, 1, ...]]``). Per thread, so a pool left open elsewhere (a model never closed)
    does not turn anything off for a one-GPU model of the same process."""
    _DEVICE_THREAD.active = True
    try:
        yield
    finally:
        _DEVICE_THREAD.active = False


def drives_devices_from_threads() -> bool:
    """True in a worker thread of a pool that drives several GPUs (see ``one_of_several_device_threads``):
    libraries with per-process device state (nvmath's cuBLASLt plans) are not used there."""
    return getattr(_DEVICE_THREAD, "active", False)


class DeferredRead:
    """A small device array copied to pinned host memory on the current stream, read later.

    A training step that needs a device-computed count (new hash rows, unique keys) only at its
    end starts the copy where the count is made and reads it when needed: by then the stream has
    long passed the copy, so ``value()`` waits for that copy alone, not for the queued step.
    On NumPy the value is simply kept.
    """

    def __init__(self, xp, array):
        if is_numpy(xp):
            self._host, self._event = np.array(array, copy=True), None
            return
        host = xp.cuda.alloc_pinned_memory(array.nbytes)
        self._host = np.frombuffer(host, array.dtype, array.size).reshape(array.shape)
        self._keep = host  # the pinned block lives as long as this read
        stream = xp.cuda.get_current_stream()
        xp.cuda.runtime.memcpyAsync(self._host.ctypes.data, array.data.ptr, array.nbytes,
                                    xp.cuda.runtime.memcpyDeviceToHost, stream.ptr)
        self._event = xp.cuda.Event(block=False, disable_timing=True)
        self._event.record(stream)

    def value(self) -> np.ndarray:
        if self._event is not None:
            self._event.synchronize()
            self._event = None
        return self._host


class PinnedUploads:
    """Host arrays to the device without a host sync: through a pinned staging buffer and an asynchronous
    copy on the current stream. A copy from pageable memory waits for every kernel queued before it, so
    with it the host could never run ahead of the GPU (the reader's batches arrive that way).

    Two buffers per name take turns; before a buffer is refilled, the copy that last read it is waited
    for (queued a whole load earlier: done long ago). On NumPy the host array itself (or a copy into ``out``).
    """

    def __init__(self, xp):
        self.xp = xp
        self._rings: dict = {}  # name -> [turn, [pinned memory, capacity, event] x 2]

    def to_device(self, name: str, host, out=None):
        """``host``'s contents on the device, in ``out`` (C-contiguous, same shape and dtype) if given."""
        host = np.ascontiguousarray(host)
        if is_numpy(self.xp):  # host memory already: no copy unless asked into ``out``
            if out is None:
                return host
            out[...] = host
            return out
        xp = self.xp
        if out is None:
            out = xp.empty(host.shape, host.dtype)
        if host.nbytes == 0:
            return out
        ring = self._rings.setdefault(name, [0, [None, 0, None], [None, 0, None]])
        ring[0] ^= 1
        slot = ring[1 + ring[0]]
        if slot[2] is not None:
            slot[2].synchronize()  # the copy that last read this buffer
        if slot[1] < host.nbytes:
            slot[0], slot[1] = xp.cuda.alloc_pinned_memory(host.nbytes), host.nbytes
        staged = np.ndarray(host.shape, dtype=host.dtype, buffer=slot[0])
        np.copyto(staged, host)
        out.set(staged, stream=xp.cuda.get_current_stream())
        slot[2] = xp.cuda.Event(disable_timing=True)
        slot[2].record()
        return out
