"""The memory manager: every tensor is planned at compile() and placed in a few large buffers.

Requests are grouped into pools ("params", "param_grads", "opt_states", "train/activations", ...);
each (pool, dtype) becomes one contiguous arena on the device and every tensor a view into it.
Steady-state steps therefore allocate nothing for activations, gradients, weights or states.

Pools named in ``CONTIGUOUS`` are packed with no padding so the whole pool is one flat vector:
all dense weights in one buffer, their gradients in another (one fused optimizer kernel and one
all-reduce per step).

Example:
    >>> import numpy as np
    >>> plan = MemoryPlan()
    >>> plan.request("params", "fc1.weight", (4, 3), np.float32)
    >>> views = plan.allocate(np)
    >>> views["fc1.weight"].shape, plan.flat("params", np.float32).size
    ((4, 3), 12)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ALIGN_BYTES = 256
CONTIGUOUS = ("params", "param_grads", "opt_states", "params_fp16", "param_grads_fp32", "layer_state")


@dataclass(frozen=True)
class Request:
    pool: str
    name: str
    shape: tuple
    dtype: np.dtype


class MemoryPlan:
    """Collect buffer requests, then allocate one arena per (pool, dtype)."""

    def __init__(self):
        self._requests: list[Request] = []
        self._arenas: dict[tuple, object] = {}
        self._offsets: dict[str, tuple] = {}

    def request(self, pool: str, name: str, shape, dtype) -> None:
        if any(r.name == name for r in self._requests):
            raise ValueError(f"memory plan: buffer '{name}' requested twice")
        self._requests.append(Request(pool, name, tuple(int(d) for d in shape), np.dtype(dtype)))

    def _layout(self) -> dict[tuple, int]:
        sizes: dict[tuple, int] = {}
        for r in self._requests:
            key = (r.pool, r.dtype.str)
            start = sizes.get(key, 0)
            if r.pool not in CONTIGUOUS:
                align = max(1, ALIGN_BYTES // r.dtype.itemsize)
                start = -(-start // align) * align
            count = int(np.prod(r.shape, dtype=np.int64))
            self._offsets[r.name] = (key, start, count, r.shape)
            sizes[key] = start + count
        return sizes

    def allocate(self, xp) -> dict:
        """Create the arenas on ``xp``'s device (zero-filled) and return name -> view."""
        sizes = self._layout()
        self._arenas = {key: xp.zeros(max(n, 1), dtype=np.dtype(key[1])) for key, n in sizes.items()}
        views = {}
        for name, (key, start, count, shape) in self._offsets.items():
            views[name] = self._arenas[key][start:start + count].reshape(shape)
        return views

    def flat(self, pool: str, dtype) -> object:
        """The whole contiguous arena of a pool (e.g. every dense weight as one vector)."""
        key = (pool, np.dtype(dtype).str)
        n = sum(c for k, _, c, _ in self._offsets.values() if k == key)
        arena = self._arenas.get(key)
        return arena[:n] if arena is not None else None

    def bytes_by_pool(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for (pool, _), arena in self._arenas.items():
            out[pool] = out.get(pool, 0) + int(arena.nbytes)
        return out
