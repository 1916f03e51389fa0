"""NumPy twins of the CUDA kernels in ``kernels.cu`` (same names, same signatures).

Element-wise over tensors of any rank; every function writes its output argument(s) (which may
alias the gradient input) and returns them. float16 inputs are computed in float32 and stored
back (the kernels' acc_t). Dropout's ``rand`` and ``mask`` are float32 for every input dtype.
PReLU_Dice works on (rows, features) views: the statistics run over the rows.

Example:
    >>> import numpy as np
    >>> x = np.array([-1.0, 0.0, 2.0])
    >>> relu_fwd(x, np.empty_like(x))
    array([0., 0., 2.])
"""
from __future__ import annotations

import numpy as np


def _acc(x):
    """The kernels' accumulate dtype: float32 for float16, the dtype otherwise."""
    return np.dtype(np.float32) if x.dtype == np.float16 else x.dtype


def relu_fwd(x, out):
    np.copyto(out, np.where(x > 0, x, 0))
    return out


def relu_bwd(dy, y, out):
    """``y`` is the forward output: ``y > 0`` exactly where ``x > 0``."""
    np.copyto(out, np.where(y > 0, dy, 0))
    return out


def sigmoid_fwd(x, out):
    """``1 / (1 + e^-x)`` in the stable form ``e = exp(-|x|)``, which never overflows."""
    np.copyto(out, _sigmoid(x.astype(_acc(x))), casting="unsafe")
    return out


def _sigmoid(x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def sigmoid_bwd(dy, y, out):
    """``y`` is the forward output."""
    y = y.astype(_acc(y))
    np.copyto(out, dy.astype(y.dtype) * y * (1 - y), casting="unsafe")
    return out


def elu_fwd(x, alpha, out):
    x = x.astype(_acc(x))
    alpha = x.dtype.type(alpha)
    np.copyto(out, np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0))), casting="unsafe")
    return out


def elu_bwd(dy, x, alpha, out):
    """``x`` is the forward input."""
    x = x.astype(_acc(x))
    dy, alpha = dy.astype(x.dtype), x.dtype.type(alpha)
    np.copyto(out, np.where(x > 0, dy, dy * alpha * np.exp(np.minimum(x, 0))), casting="unsafe")
    return out


def dropout_fwd(x, rand, rate, mask, out):
    """Drop where ``rand < rate``; keep the rest scaled by ``1/(1-rate)``. Writes ``mask`` and ``out``.

    ``rand`` and ``mask`` are float32 (they may be the same buffer); ``x`` and ``out`` any float dtype.
    """
    rate = np.float32(rate)
    scale = np.float32(1) / (np.float32(1) - rate)
    np.copyto(mask, np.where(rand >= rate, scale, np.float32(0)))
    np.copyto(out, x.astype(_acc(x)) * mask.astype(_acc(x)), casting="unsafe")
    return mask, out


def dropout_bwd(dy, mask, out):
    np.copyto(out, dy.astype(_acc(dy)) * mask.astype(_acc(dy)), casting="unsafe")
    return out


def dice_stats(x_rf, mean_f, inv_std_f, eps):
    """Per feature: mean over the rows and 1/sqrt(biased variance + eps)."""
    x = x_rf.astype(_acc(x_rf))
    mean = x.mean(axis=0)
    mean_f[...] = mean
    inv_std_f[...] = 1 / np.sqrt(((x - mean) ** 2).mean(axis=0) + eps)
    return mean_f, inv_std_f


def _dice_p(x, mean_f, inv_std_f):
    inv_std = inv_std_f.astype(x.dtype)
    z = (x - mean_f.astype(x.dtype)) * inv_std
    return z, _sigmoid(z), inv_std


def dice_fwd(x_rf, mean_f, inv_std_f, alpha, y_rf):
    """y = x·(α + (1−α)·p), p = σ((x − mean)·inv_std)."""
    x = x_rf.astype(_acc(x_rf))
    _z, p, _ = _dice_p(x, mean_f, inv_std_f)
    np.copyto(y_rf, x * (alpha + (1 - alpha) * p), casting="unsafe")
    return y_rf


def _dice_h(x, dy, p, alpha):
    return dy * x * (1 - alpha) * p * (1 - p)


def dice_bwd_stats(x_rf, dy_rf, mean_f, inv_std_f, alpha, hmean_f, hzmean_f):
    """Per feature: mean_r(h) and mean_r(h·z), h = dy·x·(1−α)·p(1−p) (dL/dz)."""
    x = x_rf.astype(_acc(x_rf))
    z, p, _ = _dice_p(x, mean_f, inv_std_f)
    h = _dice_h(x, dy_rf.astype(x.dtype), p, alpha)
    hmean_f[...] = h.mean(axis=0)
    hzmean_f[...] = (h * z).mean(axis=0)
    return hmean_f, hzmean_f


def dice_bwd(x_rf, dy_rf, mean_f, inv_std_f, hmean_f, hzmean_f, alpha, dx_rf):
    """dx = dy·(α + (1−α)p) + inv_std·(h − mean(h) − z·mean(h·z)) (through the batch statistics)."""
    x = x_rf.astype(_acc(x_rf))
    dy = dy_rf.astype(x.dtype)
    z, p, inv_std = _dice_p(x, mean_f, inv_std_f)
    h = _dice_h(x, dy, p, alpha)
    dx = dy * (alpha + (1 - alpha) * p) + inv_std * (h - hmean_f.astype(x.dtype) - z * hzmean_f.astype(x.dtype))
    np.copyto(dx_rf, dx, casting="unsafe")
    return dx_rf
