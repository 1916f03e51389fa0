"""CuPy launchers of ``kernels.cu``; same names and arguments as the NumPy twins in ``reference.py``.

Arrays must be C-contiguous CuPy arrays of one float dtype; ``rows`` are unique row indices.
"""
from __future__ import annotations

import numpy as np

from hugectr_core.kernels import KernelModule
from hugectr_core.optim_support import check_kernel_arrays as _check
from hugectr_core.optim_support import rows_kernel_args as _rows_args

from . import reference

_DTYPES = ("float", "double")
_NAMES = ("adam_update", "adam_update_rows", "adagrad_update", "adagrad_update_rows", "ftrl_update",
          "ftrl_update_rows", "rowwise_adagrad_update_rows")
KERNELS = KernelModule("hugectr_optimizers_adaptive", [f"{n}<{t}>" for n in _NAMES for t in _DTYPES])


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


def ftrl_update(w, g, n, z, lr, beta, lambda1, lambda2, inv_scaler):
    _check(w, g, n, z)
    t = w.dtype.type
    KERNELS.launch("ftrl_update", w.dtype, w.size,
                   (w, g, n, z, np.int64(w.size), t(lr), t(beta), t(lambda1), t(lambda2), t(inv_scaler)))
    return w, n, z


def ftrl_update_rows(table, n, z, rows, grad_rows, lr, beta, lambda1, lambda2, inv_scaler):
    _check(table, n, z)
    rows, grad_rows, r, vec = _rows_args(table, rows, grad_rows)
    t = table.dtype.type
    KERNELS.launch("ftrl_update_rows", table.dtype, r * vec,
                   (table, n, z, rows, grad_rows, r, vec, t(lr), t(beta), t(lambda1), t(lambda2), t(inv_scaler)))
    return table, n, z


def rowwise_adagrad_update_rows(table, a, rows, grad_rows, lr, eps, inv_scaler):
    _check(table, a)
    rows, grad_rows, r, vec = _rows_args(table, rows, grad_rows)
    t = table.dtype.type
    if r:
        KERNELS.launch("rowwise_adagrad_update_rows", table.dtype, r,
                       (table, a, rows, grad_rows, r, vec, t(lr), t(eps), t(inv_scaler)))
    return table, a


# RMSProp has no fused kernel yet: CuPy runs the twin's array expressions (a few elementwise launches).
# HugeCTR offers it only for dynamic Embedding Collection tables; fuse it when a model needs the speed.
rmsprop_update = reference.rmsprop_update
rmsprop_update_rows = reference.rmsprop_update_rows
