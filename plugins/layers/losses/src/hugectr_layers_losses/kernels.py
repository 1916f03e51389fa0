"""CuPy launchers for ``kernels.cu``; same names and signatures as ``reference.py``.

CuPy is imported only when a kernel is first launched (through ``KernelModule``).
"""
from __future__ import annotations

import numpy as np

from hugectr_core.errors import BackendError
from hugectr_core.kernels import KernelModule

KERNELS = KernelModule("hugectr_layers_losses",
                       [f"{n}<{t}>" for n in ("bce_fwd", "bce_bwd") for t in ("float", "double")])


def _prepare(x_b, y_b, out_b):
    import cupy  # noqa: PLC0415 - launchers only run on CuPy arrays

    if not out_b.flags.c_contiguous:
        raise BackendError(f"bce kernels need a C-contiguous output, got strides {out_b.strides}")
    return cupy.ascontiguousarray(x_b), cupy.ascontiguousarray(y_b, dtype=x_b.dtype)


def bce_fwd(x_b, y_b, loss_b, n_valid: int) -> None:
    x_b, y_b = _prepare(x_b, y_b, loss_b)
    KERNELS.launch("bce_fwd", x_b.dtype, x_b.size, (x_b, y_b, loss_b, np.int64(x_b.size), np.int64(n_valid)))


def bce_bwd(x_b, y_b, grad_b, n_valid: int, scale: float) -> None:
    x_b, y_b = _prepare(x_b, y_b, grad_b)
    KERNELS.launch("bce_bwd", x_b.dtype, x_b.size,
                   (x_b, y_b, grad_b, np.int64(x_b.size), np.int64(n_valid), x_b.dtype.type(scale)))


def sigmoid(x):
    """Numerically stable logistic function on CuPy (an elementwise expression, no custom kernel)."""
    import cupy  # noqa: PLC0415

    e = cupy.exp(-cupy.abs(x))
    return cupy.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype, copy=False)
