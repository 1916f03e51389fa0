"""NumPy twins of ``kernels.cu``: same names, same arguments, same in-place effect.

Every function updates its arrays in place and also returns them (so twin tests can compare).
``*_rows`` variants update only ``table[rows]`` (unique row indices) from ``grad_rows``; they are
the contract's default sparse semantics: gather the rows, apply the dense update, scatter back.
"""
from __future__ import annotations

import numpy as np

from hugectr_core.optim_support import rows_update as _rows_update


def _scalars(dtype, *values):
    return [np.dtype(dtype).type(v) for v in values]


def sgd_update(w, g, lr, inv_scaler):
    lr, inv_scaler = _scalars(w.dtype, lr, inv_scaler)
    w -= lr * (g * inv_scaler)
    return (w,)


def momentum_update(w, g, m, lr, mu, inv_scaler):
    lr, mu, inv_scaler = _scalars(w.dtype, lr, mu, inv_scaler)
    m *= mu
    m -= lr * (g * inv_scaler)
    w += m
    return w, m


def nesterov_update(w, g, m, lr, mu, inv_scaler):
    lr, mu, inv_scaler = _scalars(w.dtype, lr, mu, inv_scaler)
    m_old = m.copy()
    m *= mu
    m -= lr * (g * inv_scaler)
    w += -mu * m_old + (1 + mu) * m
    return w, m


def sgd_update_rows(table, rows, grad_rows, lr, inv_scaler):
    return _rows_update(sgd_update, table, [], rows, grad_rows, lr, inv_scaler)


def momentum_update_rows(table, m, rows, grad_rows, lr, mu, inv_scaler):
    return _rows_update(momentum_update, table, [m], rows, grad_rows, lr, mu, inv_scaler)


def nesterov_update_rows(table, m, rows, grad_rows, lr, mu, inv_scaler):
    return _rows_update(nesterov_update, table, [m], rows, grad_rows, lr, mu, inv_scaler)
