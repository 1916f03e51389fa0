"""CuPy launchers of ``kernels.cu``; same names and arguments as the NumPy twins in ``reference.py``.

Arrays must be C-contiguous CuPy arrays of one float dtype; ``rows`` are unique row indices.
"""
from __future__ import annotations

import numpy as np

from hugectr_core.kernels import KernelModule
from hugectr_core.optim_support import check_kernel_arrays as _check
from hugectr_core.optim_support import rows_kernel_args as _rows_args

_DTYPES = ("float", "double")
_NAMES = ("sgd_update", "sgd_update_rows", "momentum_update", "momentum_update_rows",
          "nesterov_update", "nesterov_update_rows")
KERNELS = KernelModule("hugectr_optimizers_sgd", [f"{n}<{t}>" for n in _NAMES for t in _DTYPES])


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
