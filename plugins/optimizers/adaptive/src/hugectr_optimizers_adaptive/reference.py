"""NumPy twins of ``kernels.cu``: same names, same arguments, same in-place effect.

Every function updates its arrays in place and also returns them (so twin tests can compare).
``*_rows`` variants update only ``table[rows]`` (unique row indices) from ``grad_rows``; they are
the contract's default sparse semantics: gather the rows, apply the dense update, scatter back.
"""
from __future__ import annotations

import math

import numpy as np

from hugectr_core.optim_support import rows_update as _rows_update


def adam_step_size(lr: float, step: int, beta1: float, beta2: float) -> float:
    """Adam's bias-corrected step size ``lr*sqrt(1-beta2^t)/(1-beta1^t)`` (host side, float64)."""
    return lr * math.sqrt(1.0 - beta2 ** step) / (1.0 - beta1 ** step)


def _scalars(dtype, *values):
    return [np.dtype(dtype).type(v) for v in values]


def adam_update(w, g, m, v, lr_t, beta1, beta2, eps, inv_scaler):
    lr_t, beta1, beta2, eps, inv_scaler = _scalars(w.dtype, lr_t, beta1, beta2, eps, inv_scaler)
    gs = g * inv_scaler
    m *= beta1
    m += (1 - beta1) * gs
    v *= beta2
    v += (1 - beta2) * gs * gs
    w -= lr_t * m / (np.sqrt(v) + eps)
    return w, m, v


def adagrad_update(w, g, a, lr, eps, inv_scaler):
    lr, eps, inv_scaler = _scalars(w.dtype, lr, eps, inv_scaler)
    gs = g * inv_scaler
    a += gs * gs
    w -= lr * gs / (np.sqrt(a) + eps)
    return w, a


def rmsprop_update(w, g, v, lr, beta, eps, inv_scaler):
    """``v = beta*v + (1-beta)*g^2; w -= lr*g/(sqrt(v)+eps)`` with ``g = grad*inv_scaler`` (HugeCTR's
    ``rms_prop_update_grad``). Array expressions only, so it runs as is on CuPy arrays too."""
    lr, beta, eps, inv_scaler = _scalars(w.dtype, lr, beta, eps, inv_scaler)
    gs = g * inv_scaler
    v *= beta
    v += (1 - beta) * gs * gs
    w -= lr * gs / (v ** 0.5 + eps)
    return w, v


def rmsprop_update_rows(table, v, rows, grad_rows, lr, beta, eps, inv_scaler):
    return _rows_update(rmsprop_update, table, [v], rows, grad_rows, lr, beta, eps, inv_scaler)


def adam_update_rows(table, m, v, rows, grad_rows, lr_t, beta1, beta2, eps, inv_scaler):
    return _rows_update(adam_update, table, [m, v], rows, grad_rows, lr_t, beta1, beta2, eps, inv_scaler)


def adagrad_update_rows(table, a, rows, grad_rows, lr, eps, inv_scaler):
    return _rows_update(adagrad_update, table, [a], rows, grad_rows, lr, eps, inv_scaler)


FLT_EPSILON = float(np.finfo(np.float32).eps)


def ftrl_update(w, g, n, z, lr, beta, lambda1, lambda2, inv_scaler):
    lr, beta, l1, l2, inv_scaler, e0 = _scalars(w.dtype, lr, beta, lambda1, lambda2, inv_scaler, FLT_EPSILON)
    gs = g * inv_scaler
    n_new = n + gs * gs
    z += gs - (np.sqrt(n_new + e0) - np.sqrt(n + e0)) / lr * w
    n[...] = n_new
    w[...] = np.where(np.abs(z) <= l1, 0, (l1 * np.sign(z) - z) / ((beta + np.sqrt(n_new + e0)) / lr + l2))
    return w, n, z


def ftrl_update_rows(table, n, z, rows, grad_rows, lr, beta, lambda1, lambda2, inv_scaler):
    return _rows_update(ftrl_update, table, [n, z], rows, grad_rows, lr, beta, lambda1, lambda2, inv_scaler)


def rowwise_adagrad_update_rows(table, a, rows, grad_rows, lr, eps, inv_scaler):
    """Row-wise AdaGrad on the unique ``rows``: one accumulator per row (``a`` is ``[rows, 1]``).

    ``a[r] += mean_c(g[r, c]^2); table[r] -= lr * g[r] / (sqrt(a[r]) + eps)`` with ``g = grad * inv_scaler``.
    """
    lr, eps, inv_scaler = _scalars(table.dtype, lr, eps, inv_scaler)
    gs = grad_rows.astype(table.dtype).reshape(len(rows), -1) * inv_scaler
    acc = a[rows].reshape(len(rows), 1) + (gs * gs).mean(axis=1, keepdims=True)
    a[rows] = acc.reshape(a[rows].shape)
    table[rows] = table[rows] - (lr * gs / (np.sqrt(acc) + eps)).reshape(table[rows].shape)
    return table, a
