"""NumPy twins of every kernel in ``kernels.cu``: same names, same signatures, same results.

Axis letters: b batch, t time step, n GRU hidden width, g = 3n gate pre-activations (r, z, n in
cuDNN order), i/j query/key positions (Sf/St). Softmax runs over the last axis of any C-contiguous
tensor (rows = everything else). Arithmetic runs in the kernels' accumulate type (float32 for
float16 and float32, float64 for float64) and is cast back on store, as ``acc_t<T>`` does.

Example:
    >>> import numpy as np
    >>> softmax_fwd(np.zeros((1, 4)), None, 1.0, np.empty((1, 4))).tolist()
    [[0.25, 0.25, 0.25, 0.25]]
"""
from __future__ import annotations

import numpy as np

MASK_PENALTY = 10000.0


def acc_dtype(dtype):
    """float64 for float64 inputs, float32 otherwise (the CUDA ``acc_t<T>``)."""
    return np.float64 if np.dtype(dtype) == np.float64 else np.float32


def _acc(a):
    return np.asarray(a, dtype=acc_dtype(a.dtype))


def softmax_fwd(x, mask, factor, y):
    """Softmax over the last axis of ``x*factor - (1-mask)*10000`` (``mask`` None: of ``x*factor``).

    ``mask`` has x's shape or, for a 4D x (B, h, Sf, St), shape (B, 1, Sf, St) broadcast over h.
    ``y`` may be ``x`` (in place).
    """
    acc = acc_dtype(x.dtype)
    z = _acc(x) * acc(factor)
    if mask is not None:
        z = z - (acc(1) - _acc(mask)) * acc(MASK_PENALTY)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    y[...] = e / e.sum(axis=-1, keepdims=True)
    return y


def softmax_bwd(dy, y, factor, dx):
    """``dx = factor * y * (dy - sum(dy * y))`` over the last axis; ``dx`` may be ``dy``."""
    acc = acc_dtype(y.dtype)
    dy_a, y_a = _acc(dy), _acc(y)
    dx[...] = acc(factor) * y_a * (dy_a - (dy_a * y_a).sum(axis=-1, keepdims=True))
    return dx


def sequence_mask(len_from_b, len_to_b, out_bij):
    """``out[b, 0, i, j] = 1`` if ``i < len_from[b]`` and ``j < len_to[b]`` else 0; out is (B, 1, Lf, Lt)."""
    _, _, lf, lt = out_bij.shape
    lfrom = _acc(len_from_b).reshape(-1, 1, 1, 1)
    lto = _acc(len_to_b).reshape(-1, 1, 1, 1)
    rows = np.arange(lf, dtype=lfrom.dtype).reshape(1, 1, lf, 1)
    cols = np.arange(lt, dtype=lfrom.dtype).reshape(1, 1, 1, lt)
    out_bij[...] = (rows < lfrom) & (cols < lto)
    return out_bij


def _sigmoid(v):
    return 1 / (1 + np.exp(-v))


def gru_fwd_step(xg_btg, hg_bg, bx_g, bh_g, h_prev_bn, t, gates_b4n, h_bn):
    """One GRU step from the gate pre-activations ``xg = x_t @ Wx`` and ``hg = h_prev @ Wh`` (no biases).

    r = sigmoid(xg_r + bx_r + hg_r + bh_r), z likewise, hn = hg_n + bh_n,
    n = tanh(xg_n + bx_n + r * hn), h = (1 - z) * n + z * h_prev.
    Saves ``[r, z, n, hn]`` in ``gates_b4n`` for the backward step.
    """
    nh = h_bn.shape[1]
    xg = _acc(xg_btg[:, t, :]) + _acc(bx_g).reshape(-1)
    hg = _acc(hg_bg) + _acc(bh_g).reshape(-1)
    r = _sigmoid(xg[:, :nh] + hg[:, :nh])
    z = _sigmoid(xg[:, nh:2 * nh] + hg[:, nh:2 * nh])
    hn = hg[:, 2 * nh:]
    n = np.tanh(xg[:, 2 * nh:] + r * hn)
    gates_b4n[...] = np.concatenate([r, z, n, hn], axis=1)
    h_bn[...] = (1 - z) * n + z * _acc(h_prev_bn)
    return gates_b4n, h_bn


def gru_bwd_step(dy_btn, t, gates_b4n, h_prev_bn, dh_bn, dxg_btg, dhg_bg):
    """Backward of step ``t``: ``dh_bn`` holds dL/dh_t from step t+1 on entry (dy[:, t] is added here)
    and dL/dh_{t-1} through the ``z * h_prev`` path on exit (the caller adds ``dhg @ Wh.T``).

    Writes the pre-activation gradients ``dxg[:, t] = [dr, dz, dn]`` and ``dhg = [dr, dz, dn * r]``.
    """
    nh = dh_bn.shape[1]
    g = _acc(gates_b4n)
    r, z, n, hn = g[:, :nh], g[:, nh:2 * nh], g[:, 2 * nh:3 * nh], g[:, 3 * nh:]
    dh = _acc(dh_bn) + _acc(dy_btn[:, t, :])
    dn = dh * (1 - z) * (1 - n * n)
    dz = dh * (_acc(h_prev_bn) - n) * z * (1 - z)
    dr = dn * hn * r * (1 - r)
    dxg_btg[:, t, :] = np.concatenate([dr, dz, dn], axis=1)
    dhg_bg[...] = np.concatenate([dr, dz, dn * r], axis=1)
    dh_bn[...] = dh * z
    return dh_bn, dxg_btg, dhg_bg
