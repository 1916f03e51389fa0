"""CuPy launchers of ``kernels.cu``, with the signatures of their NumPy twins in ``reference.py``.

Importing this module does not import CuPy; ``KernelModule`` compiles ``kernels.cu`` (with the
core's CUDA prelude in front) the first time a kernel is launched. Dispatch by dtype goes through
the kernel's name: ``swish_fwd<float>``, ``swish_fwd<double>``, ``swish_fwd<__half>``.

Example:
    >>> import cupy  # doctest: +SKIP
    >>> x = cupy.linspace(-3, 3, 7, dtype=cupy.float32)  # doctest: +SKIP
    >>> swish_fwd(x, cupy.empty_like(x))  # doctest: +SKIP
"""
from __future__ import annotations

import numpy as np

from hugectr_core.errors import BackendError
from hugectr_core.kernels import KernelModule, ctype

DTYPES = (np.float32, np.float64, np.float16)
KERNELS = KernelModule("hugectr_layers_example",
                       [f"{name}<{ctype(t)}>" for name in ("swish_fwd", "swish_bwd") for t in DTYPES])


def _check(*arrays):
    """The common dtype of ``arrays``; refuses what the kernels cannot handle, saying why."""
    dtype = arrays[0].dtype
    if dtype not in DTYPES:
        raise BackendError(f"hugectr_layers_example kernels support float16, float32 and float64, got {dtype}")
    for a in arrays:
        if a.dtype != dtype or a.size != arrays[0].size:
            raise BackendError(f"hugectr_layers_example kernels: arrays differ ({dtype}{arrays[0].shape} "
                               f"vs {a.dtype}{a.shape})")
        if not a.flags.c_contiguous:
            raise BackendError("hugectr_layers_example kernels need C-contiguous arrays (the engine's buffers are)")
    return dtype


def swish_fwd(x, y):
    """``y = x * sigmoid(x)``; returns ``y``."""
    dtype = _check(x, y)
    KERNELS.launch("swish_fwd", dtype, x.size, (x, y, np.int64(x.size)))
    return y


def swish_bwd(dy, x, dx):
    """``dx = dy * s * (1 + x * (1 - s))`` with ``s = sigmoid(x)``; ``dx`` may alias ``dy``."""
    dtype = _check(dy, x, dx)
    KERNELS.launch("swish_bwd", dtype, x.size, (dy, x, dx, np.int64(x.size)))
    return dx
