"""The runtimes one process drives: one per local device, stepped together on threads.

With one device this is a thin shell around a single Runtime (calls run inline). With several
(``vvgpu=[[0, 1, ...]]``) each device gets a thread that runs its share of every call under its
device context, as HugeCTR drives its GPUs; the runtimes meet in the collectives of their Comm.
When one worker fails, the others are released from their collectives at once and the first real
error is raised.

Example:
    >>> import numpy as np
    >>> from hugectr_core.comm import HostGroup, Comm
    >>> group = HostGroup(2)
    >>> pool = Workers([0, 1], np, group)
    >>> pool.start(lambda i: Comm(group, i))
    >>> pool.run(lambda comm: comm.allgather(np.array([comm.rank])).tolist())
    [[0, 1], [0, 1]]
    >>> pool.close()
"""
from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor

from . import backend
from .errors import TrainingError


class Workers:
    """Args:
        devices: this process's device ids (vvgpu of this host).
        xp: the array module (NumPy, or CuPy with a device context per worker).
        group: the HostGroup its Comms share (released when a worker fails).
    """

    def __init__(self, devices, xp, group):
        self.devices = list(devices)
        self.xp = xp
        self.group = group
        self.items: list = []
        self._pool = ThreadPoolExecutor(len(self.devices), thread_name_prefix="hugectr-worker") \
            if len(self.devices) > 1 else None
        self._threaded_gpus = self._pool is not None and not backend.is_numpy(xp)

    def _device(self, index: int):
        if backend.is_numpy(self.xp):
            return contextlib.nullcontext()
        if not self._threaded_gpus:
            return self.xp.cuda.Device(self.devices[index])
        stack = contextlib.ExitStack()
        stack.enter_context(self.xp.cuda.Device(self.devices[index]))
        stack.enter_context(backend.one_of_several_device_threads())
        return stack

    def _call(self, index: int, fn, arg):
        try:
            with self._device(index):
                return fn(arg)
        except BaseException as exc:
            self.group.abort(f"worker {index} (device {self.devices[index]}) failed: {exc}")
            if self._pool is not None:
                self._abort_device_collectives()
            raise

    def _abort_device_collectives(self) -> None:
        """The other workers may wait on their GPU for this one inside a device collective (NCCL), where no
        host barrier reaches them: abort their communicators so they fail instead of hanging. The model
        cannot train on after that (rebuild it); host collectives are released by the group alone."""
        for item in self.items:
            abort = getattr(getattr(item, "comm", item), "abort_device_collectives", None)
            if abort is not None:
                abort()

    def _map(self, fn, args) -> list:
        if self._pool is None:
            return [self._call(0, fn, args[0])]
        futures = [self._pool.submit(self._call, i, fn, a) for i, a in enumerate(args)]
        errors = [f.exception() for f in futures]
        first = next((e for e in errors if e is not None and not _released(e)), None) \
            or next((e for e in errors if e is not None), None)
        if first is not None:
            self.group.reset()  # every call has returned: the next one may meet in collectives again
            raise first
        return [f.result() for f in futures]

    def start(self, build) -> None:
        """``items[i] = build(i)`` on every worker (under its device)."""
        self.items = self._map(build, list(range(len(self.devices))))

    def run(self, fn) -> list:
        """``fn(item)`` on every worker at once; the results in device order."""
        return self._map(fn, self.items)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


def _released(exc) -> bool:
    """A worker that was only released from a collective because another one failed."""
    return isinstance(exc, TrainingError) and "collective abandoned" in str(exc)
