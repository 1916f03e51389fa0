"""NumPy twins of every kernel in ``kernels.cu``: same names, same signatures, same results.

Axis letters: b batch rows, c features (BatchNorm), r rows, d normalised last dim (LayerNorm).
Saved statistics (``mean``, ``inv_std``) are float64 in every precision. Arithmetic runs in the
kernels' accumulate type (float32 for float16 and float32 inputs, float64 for float64) and is cast
back to the input dtype on store, as ``acc_t<T>`` does on the GPU.

Example:
    >>> import numpy as np
    >>> x = np.array([[1.0], [3.0]])
    >>> mean, inv_std = bn_stats(x, 0.0, np.empty(1), np.empty(1))
    >>> float(mean[0]), float(inv_std[0])
    (2.0, 1.0)
"""
from __future__ import annotations

import numpy as np


def acc_dtype(dtype):
    """float64 for float64 inputs, float32 otherwise (the CUDA ``acc_t<T>``)."""
    return np.float64 if np.dtype(dtype) == np.float64 else np.float32


def _acc(a):
    return np.asarray(a, dtype=acc_dtype(a.dtype))


def bn_stats(x_bc, eps, mean_c, inv_std_c):
    """Per-feature batch mean and 1/sqrt(biased var + eps) (float64 outputs)."""
    x = _acc(x_bc)
    mean = x.mean(axis=0)
    var = np.square(x - mean).mean(axis=0)
    mean_c[...] = mean
    inv_std_c[...] = 1.0 / np.sqrt(var + x.dtype.type(eps))
    return mean_c, inv_std_c


def bn_apply(x_bc, mean_c, inv_std_c, gamma_c, beta_c, y_bc):
    """``y = gamma * (x - mean) * inv_std + beta`` per feature."""
    acc = acc_dtype(x_bc.dtype)
    xhat = (_acc(x_bc) - mean_c.astype(acc)) * inv_std_c.astype(acc)
    y_bc[...] = _acc(gamma_c) * xhat + _acc(beta_c)
    return y_bc


def bn_bwd(dy_bc, x_bc, mean_c, inv_std_c, gamma_c, dx_bc, dgamma_c, dbeta_c):
    """Training-mode BatchNorm backward through the batch statistics; ``dx_bc`` may be None."""
    acc = acc_dtype(x_bc.dtype)
    dy, r = _acc(dy_bc), inv_std_c.astype(acc)
    xhat = (_acc(x_bc) - mean_c.astype(acc)) * r
    dgamma, dbeta = (dy * xhat).sum(axis=0), dy.sum(axis=0)
    if dx_bc is not None:
        g = dy * _acc(gamma_c)
        dx_bc[...] = r * (g - g.mean(axis=0) - xhat * (g * xhat).mean(axis=0))
    dgamma_c[...] = dgamma
    dbeta_c[...] = dbeta
    return dx_bc, dgamma_c, dbeta_c


def ln_fwd(x_rd, gamma_d, beta_d, eps, mean_r, inv_std_r, y_rd):
    """Row-wise LayerNorm over the last dim; writes the float64 statistics and ``y``."""
    x = _acc(x_rd)
    mean = x.mean(axis=1)
    inv_std = 1.0 / np.sqrt(np.square(x - mean[:, None]).mean(axis=1) + x.dtype.type(eps))
    mean_r[...], inv_std_r[...] = mean, inv_std
    y_rd[...] = _acc(gamma_d) * ((x - mean[:, None]) * inv_std[:, None]) + _acc(beta_d)
    return mean_r, inv_std_r, y_rd


def ln_bwd_data(dy_rd, x_rd, mean_r, inv_std_r, gamma_d, dx_rd):
    """dx of LayerNorm: ``r * (g - mean(g) - xhat * mean(g * xhat))`` with ``g = dy * gamma``."""
    acc = acc_dtype(x_rd.dtype)
    r = inv_std_r.astype(acc)[:, None]
    xhat = (_acc(x_rd) - mean_r.astype(acc)[:, None]) * r
    g = _acc(dy_rd) * _acc(gamma_d)
    dx_rd[...] = r * (g - g.mean(axis=1, keepdims=True) - xhat * (g * xhat).mean(axis=1, keepdims=True))
    return dx_rd


def ln_bwd_params(dy_rd, x_rd, mean_r, inv_std_r, dgamma_d, dbeta_d):
    """Column sums: ``dgamma = sum_r dy * xhat``, ``dbeta = sum_r dy``."""
    acc = acc_dtype(x_rd.dtype)
    dy = _acc(dy_rd)
    xhat = (_acc(x_rd) - mean_r.astype(acc)[:, None]) * inv_std_r.astype(acc)[:, None]
    dgamma_d[...] = (dy * xhat).sum(axis=0)
    dbeta_d[...] = dy.sum(axis=0)
    return dgamma_d, dbeta_d
