"""NumPy twins of the CUDA kernels in ``kernels.cu`` (same names, same signatures).

Axis letters: b batch rows, c the two classes, l label columns. Rows at or beyond ``n_valid``
are padding of a short last batch. Losses are written in the accumulate dtype (float32 for
float16 inputs, as the kernels' acc_t), gradients in the input dtype.
"""
from __future__ import annotations

import numpy as np


def _acc(x):
    return np.float32 if x.dtype == np.float16 else x.dtype.type


def sigmoid(x):
    """Numerically stable logistic function (never overflows ``exp``)."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype, copy=False)


def _sigmoid_ce(x, y):
    return np.maximum(x, 0) - x * y + np.log1p(np.exp(-np.abs(x)))


def bce_fwd(x_b, y_b, loss_b, n_valid: int) -> None:
    """loss = max(x,0) - x·y + log(1 + e^{-|x|}) for valid rows, 0 for padding rows.

    Equal to HugeCTR's x(1-y) + log(1+e^{-x}) for x >= 0 and -xy + log(1+e^{x}) for x < 0.
    """
    acc = _acc(x_b)
    x, y = x_b[:n_valid].astype(acc), y_b[:n_valid].astype(acc)
    loss_b[:n_valid] = _sigmoid_ce(x, y)
    loss_b[n_valid:] = 0


def bce_bwd(x_b, y_b, grad_b, n_valid: int, scale: float) -> None:
    """grad = (σ(x) - y)·scale for valid rows, 0 for padding rows."""
    acc = _acc(x_b)
    grad_b[:n_valid] = (sigmoid(x_b[:n_valid].astype(acc)) - y_b[:n_valid].astype(acc)) * acc(scale)
    grad_b[n_valid:] = 0


def _ce_target(y_bl, acc):
    """(B, 2) target probabilities from a (B, 1) class label (>= 0.5 is class 1) or a (B, 2) label."""
    y = y_bl.astype(acc)
    if y.shape[1] == 1:
        t1 = (y[:, 0] >= 0.5).astype(acc)
        return np.stack([1 - t1, t1], axis=1)
    return y


def ce_fwd(x_b2, y_bl, loss_b, n_valid: int) -> None:
    """loss = Σ_c t_c·(logsumexp(x) − x_c) for valid rows."""
    acc = _acc(x_b2)
    x, t = x_b2[:n_valid].astype(acc), _ce_target(y_bl[:n_valid], acc)
    m = x.max(axis=1, keepdims=True)
    lse = m + np.log(np.exp(x - m).sum(axis=1, keepdims=True))
    loss_b[:n_valid] = (t * (lse - x)).sum(axis=1).reshape(loss_b[:n_valid].shape)
    loss_b[n_valid:] = 0


def ce_bwd(x_b2, y_bl, grad_b2, n_valid: int, scale: float) -> None:
    """grad_c = (Σt·softmax_c − t_c)·scale for valid rows."""
    acc = _acc(x_b2)
    x, t = x_b2[:n_valid].astype(acc), _ce_target(y_bl[:n_valid], acc)
    p1 = sigmoid(x[:, 1] - x[:, 0])
    soft = np.stack([1 - p1, p1], axis=1)
    grad_b2[:n_valid] = (t.sum(axis=1, keepdims=True) * soft - t) * acc(scale)
    grad_b2[n_valid:] = 0


def mce_fwd(x_bl, y_bl, w_l, loss_bl, n_valid: int) -> None:
    """loss[b, l] = w_l·sigmoid-CE(x, y), 0 where y < -0.5 (masked) or b >= n_valid."""
    acc = _acc(x_bl)
    x, y = x_bl.astype(acc), y_bl.astype(acc)
    live = y >= -0.5
    live[n_valid:] = False
    loss_bl[...] = np.where(live, w_l.astype(acc).reshape(1, -1) * _sigmoid_ce(x, y), 0)


def mce_bwd(x_bl, y_bl, w_l, grad_bl, n_valid: int, scale: float) -> None:
    """grad[b, l] = w_l·(σ(x) − y)·scale, 0 where masked or padding."""
    acc = _acc(x_bl)
    x, y = x_bl.astype(acc), y_bl.astype(acc)
    live = y >= -0.5
    live[n_valid:] = False
    grad_bl[...] = np.where(live, w_l.astype(acc).reshape(1, -1) * (sigmoid(x) - y) * acc(scale), 0)
