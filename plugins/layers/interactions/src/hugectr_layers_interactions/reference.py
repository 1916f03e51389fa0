"""NumPy twins of the CUDA kernels in ``kernels.cu`` (same names, same signatures).

Every function writes into its output arguments. Axis letters: b batch, f embedding vectors,
d vector width, o Interaction output width, n MultiCross width; ``_1n`` is a (1, n) row vector,
``_b1`` a (B, 1) column; FmOrder2 s slots, d width; WeightMultiply s input columns, d weight columns.
float16 inputs are computed in float32 and stored back in float16, as the kernels' acc_t does.
"""
from __future__ import annotations

import numpy as np


def _acc(array):
    """The kernels' accumulate dtype (acc_t): float32 for float16 arrays, the dtype otherwise."""
    return np.float32 if array.dtype == np.float16 else array.dtype


def _stack(mlp_bd, emb_bfd):
    """T = [mlp; emb_0 .. emb_{F-1}]: (B, F+1, d)."""
    return np.concatenate([mlp_bd[:, None, :], emb_bfd], axis=1)


def interaction_fwd(mlp_bd, emb_bfd, out_bo) -> None:
    """out = [mlp, lower triangle (row-major, diagonal excluded) of T·Tᵀ, 0]."""
    d, vectors = mlp_bd.shape[1], emb_bfd.shape[1] + 1
    t_bfd = _stack(mlp_bd, emb_bfd).astype(_acc(mlp_bd))
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
    g_bff = np.zeros((batch, vectors, vectors), dtype=_acc(mlp_bd))
    g_bff[:, rows, cols] = grad_out_bo[:, d:-1]
    grad_t_bfd = np.matmul(g_bff + g_bff.transpose(0, 2, 1), _stack(mlp_bd, emb_bfd).astype(g_bff.dtype))
    grad_mlp_bd[...] = grad_t_bfd[:, 0, :] + grad_out_bo[:, :d]
    grad_emb_bfd[...] = grad_t_bfd[:, 1:, :]


def multicross_fwd_layer(x0_bn, xl_bn, w_1n, bias_1n, out_bn, dot_b1) -> None:
    """DCN v1 cross layer: dot = x_l·wᵀ (kept for backward); out = x0·dot + b + x_l."""
    acc = _acc(x0_bn)
    x0, xl = x0_bn.astype(acc), xl_bn.astype(acc)
    dot = np.sum(xl * w_1n.astype(acc), axis=1, keepdims=True)
    dot_b1[...] = dot
    out_bn[...] = x0 * dot + bias_1n.astype(acc) + xl


def multicross_bwd_layer(x0_bn, w_1n, dot_b1, grad_out_bn, grad_x0_bn, grad_xl_bn, ddot_b1) -> None:
    """ddot = g·x0 per row; grad_x0 += g·dot (accumulates over layers); grad_xl = g + ddot·w."""
    acc = _acc(x0_bn)
    g = grad_out_bn.astype(acc)
    ddot = np.sum(g * x0_bn.astype(acc), axis=1, keepdims=True)
    ddot_b1[...] = ddot
    grad_x0_bn[...] = grad_x0_bn.astype(acc) + g * dot_b1.astype(acc)
    grad_xl_bn[...] = g + ddot * w_1n.astype(acc)


def multicross_v2_fwd_elem(x0_bn, xl_bn, bias_1n, h_bn, out_bn) -> None:
    """DCN v2 element-wise part: out = x0 ⊙ (h + b) + x_l with h = (x_l U) V (``out`` may be ``h``)."""
    acc = _acc(x0_bn)
    out_bn[...] = x0_bn.astype(acc) * (h_bn.astype(acc) + bias_1n.astype(acc)) + xl_bn.astype(acc)


def multicross_v2_bwd_elem(x0_bn, bias_1n, h_bn, grad_out_bn, grad_x0_bn, dh_bn) -> None:
    """dh = g ⊙ x0; grad_x0 += g ⊙ (h + b) (accumulates over layers)."""
    acc = _acc(x0_bn)
    g = grad_out_bn.astype(acc)
    dh_bn[...] = g * x0_bn.astype(acc)
    grad_x0_bn[...] = grad_x0_bn.astype(acc) + g * (h_bn.astype(acc) + bias_1n.astype(acc))



def fm_order2_fwd(in_bsd, out_bd) -> None:
    """out[b, d] = 0.5·((Σ_s v_s)² − Σ_s v_s²)."""
    v = in_bsd.astype(_acc(in_bsd))
    total = v.sum(axis=1)
    out_bd[...] = 0.5 * (total * total - (v * v).sum(axis=1))


def fm_order2_bwd(in_bsd, grad_out_bd, grad_in_bsd) -> None:
    """grad_in[b, s, d] = g[b, d]·(Σ_s' v_s' − v_s)."""
    v = in_bsd.astype(_acc(in_bsd))
    grad_in_bsd[...] = grad_out_bd.astype(v.dtype)[:, None, :] * (v.sum(axis=1, keepdims=True) - v)


def weight_multiply_fwd(x_bs, w_sd, out_bn) -> None:
    """out[b, s·D + d] = x[b, s]·W[s, d]."""
    acc = _acc(x_bs)
    out_bn[...] = (x_bs.astype(acc)[:, :, None] * w_sd.astype(acc)[None]).reshape(out_bn.shape)


def weight_multiply_bwd_x(w_sd, grad_out_bn, grad_x_bs) -> None:
    """grad_x[b, s] = Σ_d g[b, s·D + d]·W[s, d]."""
    acc = _acc(w_sd)
    g = grad_out_bn.astype(acc).reshape(grad_x_bs.shape[0], *w_sd.shape)
    grad_x_bs[...] = (g * w_sd.astype(acc)[None]).sum(axis=2)


def weight_multiply_bwd_w(x_bs, grad_out_bn, grad_w_sd) -> None:
    """grad_W[s, d] = Σ_b g[b, s·D + d]·x[b, s]."""
    acc = _acc(x_bs)
    g = grad_out_bn.astype(acc).reshape(x_bs.shape[0], *grad_w_sd.shape)
    grad_w_sd[...] = (g * x_bs.astype(acc)[:, :, None]).sum(axis=0)
