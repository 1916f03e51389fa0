"""NumPy twins of the CUDA kernels in ``kernels.cu`` (same names, same signatures).

Every function writes into its output arguments. Axis letters: b batch, f embedding vectors,
d vector width, o Interaction output width, n MultiCross width; ``_1n`` is a (1, n) row vector,
``_b1`` a (B, 1) column.
"""
from __future__ import annotations

import numpy as np


def _stack(mlp_bd, emb_bfd):
    """T = [mlp; emb_0 .. emb_{F-1}]: (B, F+1, d)."""
    return np.concatenate([mlp_bd[:, None, :], emb_bfd], axis=1)


def interaction_fwd(mlp_bd, emb_bfd, out_bo) -> None:
    """out = [mlp, lower triangle (row-major, diagonal excluded) of T·Tᵀ, 0]."""
    d, vectors = mlp_bd.shape[1], emb_bfd.shape[1] + 1
    t_bfd = _stack(mlp_bd, emb_bfd)
    z_bff = np.matmul(t_bfd, t_bfd.transpose(0, 2, 1))
    rows, cols = np.tril_indices(vectors, -1)  # (1,0), (2,0), (2,1), (3,0), ...
    out_bo[:, :d] = mlp_bd
    out_bo[:, d:-1] = z_bff[:, rows, cols]
    out_bo[:, -1] = 0


def interaction_bwd(mlp_bd, emb_bfd, grad_out_bo, grad_mlp_bd, grad_emb_bfd) -> None:
    """dT = (G + Gᵀ)·T with G the output gradient scattered onto the lower triangle; mlp adds its copy."""
    batch, d = mlp_bd.shape
    vectors = emb_bfd.shape[1] + 1
    rows, cols = np.tril_indices(vectors, -1)
    g_bff = np.zeros((batch, vectors, vectors), dtype=mlp_bd.dtype)
    g_bff[:, rows, cols] = grad_out_bo[:, d:-1]
    grad_t_bfd = np.matmul(g_bff + g_bff.transpose(0, 2, 1), _stack(mlp_bd, emb_bfd))
    grad_mlp_bd[...] = grad_t_bfd[:, 0, :] + grad_out_bo[:, :d]
    grad_emb_bfd[...] = grad_t_bfd[:, 1:, :]


def multicross_fwd_layer(x0_bn, xl_bn, w_1n, bias_1n, out_bn, dot_b1) -> None:
    """DCN v1 cross layer: dot = x_l·wᵀ (kept for backward); out = x0·dot + b + x_l."""
    dot_b1[...] = np.sum(xl_bn * w_1n, axis=1, keepdims=True)
    out_bn[...] = x0_bn * dot_b1 + bias_1n + xl_bn


def multicross_bwd_layer(x0_bn, w_1n, dot_b1, grad_out_bn, grad_x0_bn, grad_xl_bn, ddot_b1) -> None:
    """ddot = g·x0 per row; grad_x0 += g·dot (accumulates over layers); grad_xl = g + ddot·w."""
    ddot_b1[...] = np.sum(grad_out_bn * x0_bn, axis=1, keepdims=True)
    grad_x0_bn += grad_out_bn * dot_b1
    grad_xl_bn[...] = grad_out_bn + ddot_b1 * w_1n


def multicross_v2_fwd_elem(x0_bn, xl_bn, bias_1n, h_bn, out_bn) -> None:
    """DCN v2 element-wise part: out = x0 ⊙ (h + b) + x_l with h = (x_l U) V (``out`` may be ``h``)."""
    out_bn[...] = x0_bn * (h_bn + bias_1n) + xl_bn


def multicross_v2_bwd_elem(x0_bn, bias_1n, h_bn, grad_out_bn, grad_x0_bn, dh_bn) -> None:
    """dh = g ⊙ x0; grad_x0 += g ⊙ (h + b) (accumulates over layers)."""
    dh_bn[...] = grad_out_bn * x0_bn
    grad_x0_bn += grad_out_bn * (h_bn + bias_1n)
