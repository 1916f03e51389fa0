"""NumPy twins of the CUDA kernels in ``kernels.cu`` (same names, same signatures).

Every function writes into its output arguments. Axis letters: b batch, f embedding vectors,
v = f+1 vectors [mlp; emb], d vector width, o Interaction output width, n MultiCross width;
m, k, n of ``batched_gemm`` are the GEMM's own; ``_1n`` is a (1, n) row vector,
``_b1`` a (B, 1) column; FmOrder2 s slots, d width; WeightMultiply s input columns, d weight columns.
float16 inputs are computed in float32 and stored back in float16, as the kernels' acc_t does.
"""
from __future__ import annotations

import numpy as np


def _acc(array):
    """The kernels' accumulate dtype (acc_t): float32 for float16 arrays, the dtype otherwise."""
    return np.float32 if array.dtype == np.float16 else array.dtype


def _pairs(vectors):
    """(rows, cols) of the strictly-lower triangle in row-major order: (1,0), (2,0), (2,1), (3,0), ..."""
    return np.tril_indices(vectors, -1)


def batched_gemm(a_bmk, b_bkn, out_bmn, trans_b=False, beta=0.0, allow_tf32=True) -> None:
    """out[i] = a[i] @ (b[i]ᵀ if trans_b else b[i]) + beta·out[i] (cuBLAS strided-batched GEMM, fp32 sums).

    ``allow_tf32`` only matters on the GPU (NumPy has no TF32).

    ``b`` is (batch, k, n), or (batch, n, k) with ``trans_b``. The CUDA twin calls
    ``cublasGemmStridedBatchedEx`` on C-contiguous arrays without copying any operand.
    """
    acc = _acc(a_bmk)
    rhs = b_bkn.astype(acc).transpose(0, 2, 1) if trans_b else b_bkn.astype(acc)
    product = np.matmul(a_bmk.astype(acc), rhs)
    if beta:
        product += beta * out_bmn.astype(acc)
    out_bmn[...] = product


# -- Interaction: Z = T·Tᵀ for T = [mlp; emb], written without building T (as the CUDA path) ----
def interaction_gather(mlp_bd, emb_bfd, z_bff, out_bo) -> None:
    """out = [mlp, Z[i, j] for the pairs i > j of the F+1 vectors in row-major order, 0].

    Z's embedding block Z[1:, 1:] is ``z_bff`` = emb·embᵀ; its mlp column Z[i, 0] = emb[i-1]·mlp is
    computed here (fp32 sums for fp16, as the kernel's warp dot products).
    """
    (batch, d), num_f = mlp_bd.shape, emb_bfd.shape[1]
    acc = _acc(mlp_bd)
    z = np.zeros((batch, num_f + 1, num_f + 1), dtype=acc)
    z[:, 1:, 1:] = z_bff
    z[:, 1:, 0] = np.einsum("bfd,bd->bf", emb_bfd.astype(acc), mlp_bd.astype(acc))
    rows, cols = _pairs(num_f + 1)
    out_bo[:, :d] = mlp_bd
    out_bo[:, d:-1] = z[:, rows, cols]
    out_bo[:, -1] = 0


def interaction_fwd(mlp_bd, emb_bfd, out_bo, z_bff=None) -> None:
    """out = [mlp, lower triangle (row-major, diagonal excluded) of T·Tᵀ, 0] for T = [mlp; emb].

    ``z_bff`` (B, F, F) is the CUDA path's workspace for emb·embᵀ; the twin computes it in the
    accumulate dtype on a temporary and leaves the argument untouched.
    """
    batch, num_f = emb_bfd.shape[:2]
    z = np.empty((batch, num_f, num_f), dtype=_acc(emb_bfd))
    batched_gemm(emb_bfd, emb_bfd, z, trans_b=True)
    interaction_gather(mlp_bd, emb_bfd, z, out_bo)


def _pair_gradients(grad_out_bo, d, num_f):
    """S = G + Gᵀ (B, F+1, F+1): the pair gradients on both triangles, zero diagonal (accumulate dtype)."""
    vectors = num_f + 1
    rows, cols = _pairs(vectors)
    s = np.zeros((grad_out_bo.shape[0], vectors, vectors), dtype=_acc(grad_out_bo))
    s[:, rows, cols] = grad_out_bo[:, d:-1]
    s[:, cols, rows] = grad_out_bo[:, d:-1]
    return s


def interaction_bwd(mlp_bd, emb_bfd, grad_out_bo, grad_mlp_bd, grad_emb_bfd) -> None:
    """dT = S·T (S the symmetric pair gradients) split as the kernel computes it, without T:
    grad_emb = S_ee·emb + s_me·mlpᵀ and grad_mlp = g[:, :d] + embᵀ·s_me (pass-through + pairs),
    with S_ee = S[1:, 1:] and s_me = S[1:, 0]. One CUDA kernel does all of it (fp32 sums for fp16).
    """
    d, num_f = mlp_bd.shape[1], emb_bfd.shape[1]
    acc = _acc(mlp_bd)
    mlp, emb = mlp_bd.astype(acc), emb_bfd.astype(acc)
    s = _pair_gradients(grad_out_bo, d, num_f)
    s_ee, s_me = s[:, 1:, 1:], s[:, 1:, 0]
    grad_emb_bfd[...] = np.matmul(s_ee, emb) + s_me[:, :, None] * mlp[:, None, :]
    grad_mlp_bd[...] = grad_out_bo[:, :d].astype(acc) + np.einsum("bf,bfd->bd", s_me, emb)


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
