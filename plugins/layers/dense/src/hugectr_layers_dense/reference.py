"""NumPy twins of the CUDA kernels in ``kernels.cu`` (same names, same signatures).

These are the reference semantics and the NumPy backend's implementation. Axis letters:
m rows (batch, or batch*slots), n output width. Every function writes into its output argument
(which may alias an input where noted) and returns it. float16 arrays are computed in float32 and
rounded once on the store, as the kernels do with ``acc_t<__half>``.

Example:
    >>> import numpy as np
    >>> y = np.array([[-1.0, 2.0]])
    >>> bias_act_fwd(y, np.array([[0.5, 0.5]]), True)
    array([[0. , 2.5]])
"""
from __future__ import annotations

import numpy as np


def acc(a: np.ndarray) -> np.ndarray:
    """``a`` in its accumulate dtype: float32 for float16 (the kernels' acc_t), itself otherwise."""
    return a.astype(np.float32) if a.dtype == np.float16 else a


def bias_act_fwd(y_mn: np.ndarray, bias_n, relu: bool) -> np.ndarray:
    """In place: ``y = relu?(y + bias)``; ``bias_n`` (n,) or (1, n), or None for no bias."""
    v = acc(y_mn)
    if bias_n is not None:
        v = v + acc(bias_n).reshape(1, -1)
    if relu:
        v = np.where(v > 0, v, 0)
    np.copyto(y_mn, v, casting="unsafe")
    return y_mn


def linear_fwd(x_mk, w_kn, bias_n, relu: bool, y_mn) -> np.ndarray:
    """``y = relu?(x @ W + b)``: the GEMM, then ``bias_act_fwd``."""
    np.matmul(x_mk, w_kn, out=y_mn)
    if bias_n is not None or relu:
        bias_act_fwd(y_mn, bias_n, relu)
    return y_mn


def relu_bwd(dy: np.ndarray, y: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out = dy`` where the ReLU output ``y > 0``, else 0 (``out`` may alias ``dy``)."""
    np.copyto(out, np.where(y > 0, dy, 0))
    return out


def bias_grad(dy_mn: np.ndarray, out_n: np.ndarray, ones_m=None) -> np.ndarray:
    """Column sums: ``out[c] = sum_r dy[r, c]``; ``out_n`` has n elements (any shape).

    ``ones_m`` (the layer's all-ones workspace) selects the GEMM ``ones @ dy`` on the GPU; the sum
    is the same, so the reference ignores it.
    """
    out_n.reshape(-1)[...] = acc(dy_mn).sum(axis=0)
    return out_n


def relu_bias_bwd(dy_mn: np.ndarray, y_mn: np.ndarray, out_mn: np.ndarray, dbias_n: np.ndarray,
                  partials_pn: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fused backward of ``relu(x @ W + b)``: ``out = dy`` where ``y > 0`` else 0, and
    ``dbias[c] = sum_r out[r, c]`` (accumulated in float32 for float16).

    Equals ``relu_bwd`` then ``bias_grad``. ``partials_pn`` is the GPU's (P, n) scratch of per-row-block
    column sums; the reference needs no scratch and ignores it. ``out`` may alias ``dy``.
    """
    relu_bwd(dy_mn, y_mn, out_mn)
    bias_grad(out_mn, dbias_n)
    return out_mn, dbias_n


def bias_partials_sum(partials_pn: np.ndarray, dbias_n: np.ndarray) -> np.ndarray:
    """Second level of the fused bias gradient: ``dbias[c] = sum_p partials[p, c]`` (partials are acc_t)."""
    dbias_n.reshape(-1)[...] = partials_pn.sum(axis=0)
    return dbias_n


def weight_grad(x_mk: np.ndarray, dy_mn: np.ndarray, dw_kn: np.ndarray) -> np.ndarray:
    """``dW = x^T @ dy`` for row-major ``x`` (m, k) and ``dy`` (m, n), into ``dw`` (k, n).

    On the GPU this is one cuBLAS GEMM reading ``x`` transposed in place (see kernels.gemm_args).
    """
    np.matmul(x_mk.T, dy_mn, out=dw_kn)
    return dw_kn
