"""NumPy twins of the CUDA kernels in ``kernels.cu`` (same names, same signatures).

Axis letter: b batch rows. Rows at or beyond ``n_valid`` are padding of a short last batch.
"""
from __future__ import annotations

import numpy as np


def sigmoid(x):
    """Numerically stable logistic function (never overflows ``exp``)."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype, copy=False)


def bce_fwd(x_b, y_b, loss_b, n_valid: int) -> None:
    """loss = max(x,0) - x·y + log(1 + e^{-|x|}) for valid rows, 0 for padding rows.

    Equal to HugeCTR's x(1-y) + log(1+e^{-x}) for x >= 0 and -xy + log(1+e^{x}) for x < 0.
    """
    x, y = x_b[:n_valid], y_b[:n_valid]
    loss_b[:n_valid] = np.maximum(x, 0) - x * y + np.log1p(np.exp(-np.abs(x)))
    loss_b[n_valid:] = 0


def bce_bwd(x_b, y_b, grad_b, n_valid: int, scale: float) -> None:
    """grad = (σ(x) - y)·scale for valid rows, 0 for padding rows."""
    grad_b[:n_valid] = (sigmoid(x_b[:n_valid]) - y_b[:n_valid]) * scale
    grad_b[n_valid:] = 0
