"""CuPy launchers of ``kernels.cu``; same names and arguments as the NumPy twins in ``reference.py``.

Arrays must be C-contiguous CuPy arrays of one float dtype; ``rows`` are unique row indices.
"""
from __future__ import annotations

import numpy as np

from hugectr_core.errors import BackendError
from hugectr_core.kernels import KernelModule

_DTYPES = ("float", "double")
_NAMES = ("adam_update", "adam_update_rows", "adagrad_update", "adagrad_update_rows")
KERNELS = KernelModule("hugectr_optimizers_adaptive", [f"{n}<{t}>" for n in _NAMES for t in _DTYPES])


def _check(*arrays):
    for a in arrays:
        if not a.flags.c_contiguous:
            raise BackendError("optimizer kernels need C-contiguous arrays; pass a contiguous buffer or slice")
        if a.dtype != arrays[0].dtype:
            raise BackendError(f"optimizer kernels need one dtype for weights, gradients and states; "
                               f"got {arrays[0].dtype} and {a.dtype}: cast the gradient first")


def _rows_args(table, rows, grad_rows):
    import cupy  # noqa: PLC0415 - only on the GPU path

    rows = cupy.ascontiguousarray(rows, dtype=cupy.int64)
    grad_rows = cupy.ascontiguousarray(grad_rows, dtype=table.dtype)
    vec = table.size // table.shape[0] if table.ndim > 1 else 1
    return rows, grad_rows, np.int64(rows.size), np.int64(vec)


def adam_update(w, g, m, v, lr_t, beta1, beta2, eps, inv_scaler):
    _check(w, g, m, v)
    t = w.dtype.type
    KERNELS.launch("adam_update", w.dtype, w.size,
                   (w, g, m, v, np.int64(w.size), t(lr_t), t(beta1), t(beta2), t(eps), t(inv_scaler)))
    return w, m, v


def adam_update_rows(table, m, v, rows, grad_rows, lr_t, beta1, beta2, eps, inv_scaler):
    _check(table, m, v)
    rows, grad_rows, r, vec = _rows_args(table, rows, grad_rows)
    t = table.dtype.type
    KERNELS.launch("adam_update_rows", table.dtype, r * vec,
                   (table, m, v, rows, grad_rows, r, vec, t(lr_t), t(beta1), t(beta2), t(eps), t(inv_scaler)))
    return table, m, v


def adagrad_update(w, g, a, lr, eps, inv_scaler):
    _check(w, g, a)
    t = w.dtype.type
    KERNELS.launch("adagrad_update", w.dtype, w.size, (w, g, a, np.int64(w.size), t(lr), t(eps), t(inv_scaler)))
    return w, a


def adagrad_update_rows(table, a, rows, grad_rows, lr, eps, inv_scaler):
    _check(table, a)
    rows, grad_rows, r, vec = _rows_args(table, rows, grad_rows)
    t = table.dtype.type
    KERNELS.launch("adagrad_update_rows", table.dtype, r * vec,
                   (table, a, rows, grad_rows, r, vec, t(lr), t(eps), t(inv_scaler)))
    return table, a
