"""NumPy twins of the CUDA kernels in ``kernels.cu`` (same names, same signatures).

These are the reference semantics and the NumPy backend's implementation. Axis letters:
m rows (batch, or batch*slots), n output width. Every function writes into its output argument
(which may alias an input where noted) and returns it.

Example:
    >>> import numpy as np
    >>> y = np.array([[-1.0, 2.0]])
    >>> bias_act_fwd(y, np.array([[0.5, 0.5]]), True)
    array([[0. , 2.5]])
"""
from __future__ import annotations

import numpy as np


def bias_act_fwd(y_mn: np.ndarray, bias_n, relu: bool) -> np.ndarray:
    """In place: ``y = relu?(y + bias)``; ``bias_n`` (n,) or (1, n), or None for no bias."""
    if bias_n is not None:
        y_mn += bias_n.reshape(1, -1)
    if relu:
        np.copyto(y_mn, np.where(y_mn > 0, y_mn, 0))
    return y_mn


def relu_bwd(dy: np.ndarray, y: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out = dy`` where the ReLU output ``y > 0``, else 0 (``out`` may alias ``dy``)."""
    np.copyto(out, np.where(y > 0, dy, 0))
    return out


def bias_grad(dy_mn: np.ndarray, out_n: np.ndarray) -> np.ndarray:
    """Column sums: ``out[c] = sum_r dy[r, c]``; ``out_n`` has n elements (any shape)."""
    out_n.reshape(-1)[...] = dy_mn.sum(axis=0)
    return out_n
