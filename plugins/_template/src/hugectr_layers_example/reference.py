"""NumPy twins of the CUDA kernels in ``kernels.cu`` (same names, same signatures).

They are the reference semantics and the NumPy backend's implementation. Arrays are C-contiguous,
of any rank (i: flat element index). float16 inputs are computed in float32 and rounded once on
the store, as the kernels do with ``acc_t<__half>``.

Example:
    >>> import numpy as np
    >>> swish_fwd(np.array([0.0, 1.0]), np.empty(2)).round(4)
    array([0.    , 0.7311])
"""
from __future__ import annotations

import numpy as np


def acc(a: np.ndarray) -> np.ndarray:
    """``a`` in its accumulate dtype: float32 for float16 (the kernels' acc_t), itself otherwise."""
    return a.astype(np.float32) if a.dtype == np.float16 else a


def sigmoid(v: np.ndarray) -> np.ndarray:
    """Stable sigmoid: ``exp(-|v|)`` never overflows."""
    e = np.exp(-np.abs(v))
    return np.where(v >= 0, 1 / (1 + e), e / (1 + e))


def swish_fwd(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``y = x * sigmoid(x)``; returns ``y``."""
    v = acc(x)
    np.copyto(y, v * sigmoid(v), casting="unsafe")
    return y


def swish_bwd(dy: np.ndarray, x: np.ndarray, dx: np.ndarray) -> np.ndarray:
    """``dx = dy * s * (1 + x * (1 - s))`` with ``s = sigmoid(x)``; ``dx`` may alias ``dy``."""
    v = acc(x)
    s = sigmoid(v)
    np.copyto(dx, acc(dy) * s * (1 + v * (1 - s)), casting="unsafe")
    return dx
