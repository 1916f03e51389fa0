"""CuPy launchers for ``kernels.cu``; same names and signatures as ``reference.py``.

CuPy is imported only when a kernel is first launched (through ``KernelModule``).
"""
from __future__ import annotations

import numpy as np

from hugectr_core.errors import BackendError
from hugectr_core.kernels import KernelModule

_NAMES = ("bce_fwd", "bce_bwd", "ce_fwd", "ce_bwd", "mce_fwd", "mce_bwd")
KERNELS = KernelModule("hugectr_layers_losses", [f"{n}<{t}>" for n in _NAMES for t in ("float", "double", "__half")])


def _acc(dtype):
    """acc_t<T> of the kernels: float64 for float64, float32 otherwise."""
    return np.float64 if dtype == np.float64 else np.float32


def _prepare(x, y, out, out_dtype):
    import cupy  # noqa: PLC0415 - launchers only run on CuPy arrays

    if not out.flags.c_contiguous:
        raise BackendError(f"loss kernels need a C-contiguous output, got strides {out.strides}")
    if out.dtype != out_dtype:
        raise BackendError(f"loss kernel output must be {np.dtype(out_dtype)} for {x.dtype} logits, got {out.dtype}")
    return cupy.ascontiguousarray(x), cupy.ascontiguousarray(y, dtype=x.dtype)


def bce_fwd(x_b, y_b, loss_b, n_valid: int) -> None:
    x_b, y_b = _prepare(x_b, y_b, loss_b, _acc(x_b.dtype))
    KERNELS.launch("bce_fwd", x_b.dtype, x_b.size, (x_b, y_b, loss_b, np.int64(x_b.size), np.int64(n_valid)))


def bce_bwd(x_b, y_b, grad_b, n_valid: int, scale: float) -> None:
    x_b, y_b = _prepare(x_b, y_b, grad_b, x_b.dtype)
    KERNELS.launch("bce_bwd", x_b.dtype, x_b.size,
                   (x_b, y_b, grad_b, np.int64(x_b.size), np.int64(n_valid), _acc(x_b.dtype)(scale)))


def ce_fwd(x_b2, y_bl, loss_b, n_valid: int) -> None:
    x_b2, y_bl = _prepare(x_b2, y_bl, loss_b, _acc(x_b2.dtype))
    rows = x_b2.shape[0]
    KERNELS.launch("ce_fwd", x_b2.dtype, rows,
                   (x_b2, y_bl, loss_b, np.int64(rows), np.int64(n_valid), np.int32(y_bl.shape[1])))


def ce_bwd(x_b2, y_bl, grad_b2, n_valid: int, scale: float) -> None:
    x_b2, y_bl = _prepare(x_b2, y_bl, grad_b2, x_b2.dtype)
    rows = x_b2.shape[0]
    KERNELS.launch("ce_bwd", x_b2.dtype, rows,
                   (x_b2, y_bl, grad_b2, np.int64(rows), np.int64(n_valid), np.int32(y_bl.shape[1]),
                    _acc(x_b2.dtype)(scale)))


def mce_fwd(x_bl, y_bl, w_l, loss_bl, n_valid: int) -> None:
    import cupy  # noqa: PLC0415

    x_bl, y_bl = _prepare(x_bl, y_bl, loss_bl, _acc(x_bl.dtype))
    w_l = cupy.ascontiguousarray(w_l, dtype=x_bl.dtype)
    rows, labels = x_bl.shape
    KERNELS.launch("mce_fwd", x_bl.dtype, x_bl.size,
                   (x_bl, y_bl, w_l, loss_bl, np.int64(rows), np.int64(labels), np.int64(n_valid)))


def mce_bwd(x_bl, y_bl, w_l, grad_bl, n_valid: int, scale: float) -> None:
    import cupy  # noqa: PLC0415

    x_bl, y_bl = _prepare(x_bl, y_bl, grad_bl, x_bl.dtype)
    w_l = cupy.ascontiguousarray(w_l, dtype=x_bl.dtype)
    rows, labels = x_bl.shape
    KERNELS.launch("mce_bwd", x_bl.dtype, x_bl.size,
                   (x_bl, y_bl, w_l, grad_bl, np.int64(rows), np.int64(labels), np.int64(n_valid),
                    _acc(x_bl.dtype)(scale)))


def sigmoid(x):
    """Numerically stable logistic function on CuPy (an elementwise expression, no custom kernel)."""
    import cupy  # noqa: PLC0415

    e = cupy.exp(-cupy.abs(x))
    return cupy.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype, copy=False)
