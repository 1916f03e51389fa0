"""CuPy launchers of ``kernels.cu``; same names and arguments as the NumPy twins in ``reference.py``.

Arrays must be C-contiguous CuPy arrays of one float dtype; ``rows`` are unique row indices.
"""
from __future__ import annotations

import numpy as np

from hugectr_core.errors import BackendError
from hugectr_core.kernels import KernelModule

_DTYPES = ("float", "double")
_NAMES = ("sgd_update", "sgd_update_rows", "momentum_update", "momentum_update_rows",
          "nesterov_update", "nesterov_update_rows")
KERNELS = KernelModule("hugectr_optimizers_sgd", [f"{n}<{t}>" for n in _NAMES for t in _DTYPES])


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


def sgd_update(w, g, lr, inv_scaler):
    _check(w, g)
    t = w.dtype.type
    KERNELS.launch("sgd_update", w.dtype, w.size, (w, g, np.int64(w.size), t(lr), t(inv_scaler)))
    return (w,)


def sgd_update_rows(table, rows, grad_rows, lr, inv_scaler):
    _check(table)
    rows, grad_rows, r, v = _rows_args(table, rows, grad_rows)
    t = table.dtype.type
    KERNELS.launch("sgd_update_rows", table.dtype, r * v, (table, rows, grad_rows, r, v, t(lr), t(inv_scaler)))
    return (table,)


def momentum_update(w, g, m, lr, mu, inv_scaler):
    _check(w, g, m)
    t = w.dtype.type
    KERNELS.launch("momentum_update", w.dtype, w.size, (w, g, m, np.int64(w.size), t(lr), t(mu), t(inv_scaler)))
    return w, m


def momentum_update_rows(table, m, rows, grad_rows, lr, mu, inv_scaler):
    _check(table, m)
    rows, grad_rows, r, v = _rows_args(table, rows, grad_rows)
    t = table.dtype.type
    KERNELS.launch("momentum_update_rows", table.dtype, r * v,
                   (table, m, rows, grad_rows, r, v, t(lr), t(mu), t(inv_scaler)))
    return table, m


def nesterov_update(w, g, m, lr, mu, inv_scaler):
    _check(w, g, m)
    t = w.dtype.type
    KERNELS.launch("nesterov_update", w.dtype, w.size, (w, g, m, np.int64(w.size), t(lr), t(mu), t(inv_scaler)))
    return w, m


def nesterov_update_rows(table, m, rows, grad_rows, lr, mu, inv_scaler):
    _check(table, m)
    rows, grad_rows, r, v = _rows_args(table, rows, grad_rows)
    t = table.dtype.type
    KERNELS.launch("nesterov_update_rows", table.dtype, r * v,
                   (table, m, rows, grad_rows, r, v, t(lr), t(mu), t(inv_scaler)))
    return table, m
