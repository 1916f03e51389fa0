"""NumPy twins of the CUDA kernels in ``kernels.cu`` (same names, same signatures).

Element-wise over tensors of any rank; every function writes its output argument(s) (which may
alias the gradient input) and returns them.

Example:
    >>> import numpy as np
    >>> x = np.array([-1.0, 0.0, 2.0])
    >>> relu_fwd(x, np.empty_like(x))
    array([0., 0., 2.])
"""
from __future__ import annotations

import numpy as np


def relu_fwd(x, out):
    np.copyto(out, np.where(x > 0, x, 0))
    return out


def relu_bwd(dy, y, out):
    """``y`` is the forward output: ``y > 0`` exactly where ``x > 0``."""
    np.copyto(out, np.where(y > 0, dy, 0))
    return out


def sigmoid_fwd(x, out):
    """``1 / (1 + e^-x)`` in the stable form ``e = exp(-|x|)``, which never overflows."""
    e = np.exp(-np.abs(x))
    np.copyto(out, np.where(x >= 0, 1 / (1 + e), e / (1 + e)))
    return out


def sigmoid_bwd(dy, y, out):
    """``y`` is the forward output."""
    np.copyto(out, dy * y * (1 - y))
    return out


def elu_fwd(x, alpha, out):
    alpha = x.dtype.type(alpha)
    np.copyto(out, np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0))))
    return out


def elu_bwd(dy, x, alpha, out):
    """``x`` is the forward input."""
    alpha = x.dtype.type(alpha)
    np.copyto(out, np.where(x > 0, dy, dy * alpha * np.exp(np.minimum(x, 0))))
    return out


def dropout_fwd(x, rand, rate, mask, out):
    """Drop where ``rand < rate``; keep the rest scaled by ``1/(1-rate)``. Writes ``mask`` and ``out``."""
    rate = x.dtype.type(rate)
    scale = x.dtype.type(1) / (x.dtype.type(1) - rate)
    np.copyto(mask, np.where(rand >= rate, scale, x.dtype.type(0)))
    np.multiply(x, mask, out=out)
    return mask, out


def dropout_bwd(dy, mask, out):
    np.multiply(dy, mask, out=out)
    return out
