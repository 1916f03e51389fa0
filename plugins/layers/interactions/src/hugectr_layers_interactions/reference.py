"""NumPy twins of the CUDA kernels in ``kernels.cu`` (same names, same signatures).

Every function writes into its output arguments. Axis letters: b batch, f embedding vectors,
v = f+1 vectors of T = [mlp; emb], d vector width, o Interaction output width, n MultiCross width;
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


# -- Interaction building blocks (the CUDA path runs exactly these steps) -------------------------
def interaction_stack(mlp_bd, emb_bfd, t_bvd) -> None:
    """T = [mlp; emb_0 .. emb_{F-1}]: t[b, 0] = mlp[b], t[b, 1 + f] = emb[b, f]. v = F+1 vectors."""
    t_bvd[:, 0, :] = mlp_bd
    t_bvd[:, 1:, :] = emb_bfd


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


def interaction_gather(mlp_bd, z_bvv, out_bo) -> None:
    """out = [mlp, Z[i, j] for the pairs i > j in row-major order, 0]."""
    d, vectors = mlp_bd.shape[1], z_bvv.shape[1]
    rows, cols = _pairs(vectors)
    out_bo[:, :d] = mlp_bd
    out_bo[:, d:-1] = z_bvv[:, rows, cols]
    out_bo[:, -1] = 0


def interaction_bwd_prepare(grad_out_bo, dz_mlp_b1v, dz_emb_bfv, grad_mlp_bd) -> None:
    """dZ = G + Gᵀ with G the pair gradients on the lower triangle (diagonal 0), split into its mlp row
    (B, 1, v) and its embedding rows (B, F, v); grad_mlp = the pass-through gradient g[:, :d]."""
    batch, d = grad_mlp_bd.shape
    vectors = dz_emb_bfv.shape[2]
    rows, cols = _pairs(vectors)
    dz = np.zeros((batch, vectors, vectors), dtype=grad_out_bo.dtype)
    dz[:, rows, cols] = grad_out_bo[:, d:-1]
    dz[:, cols, rows] = grad_out_bo[:, d:-1]
    dz_mlp_b1v[...] = dz[:, :1, :]
    dz_emb_bfv[...] = dz[:, 1:, :]
    grad_mlp_bd[...] = grad_out_bo[:, :d]


# -- Interaction: the whole operation, composed of the blocks above -------------------------------
def interaction_fwd(mlp_bd, emb_bfd, out_bo, t_bvd=None, z_bvv=None) -> None:
    """out = [mlp, lower triangle (row-major, diagonal excluded) of T·Tᵀ, 0].

    ``t_bvd`` (B, F+1, d) and ``z_bvv`` (B, F+1, F+1) are the CUDA path's scratch; the twin computes
    in the accumulate dtype on its own temporaries and leaves them untouched.
    """
    (batch, d), vectors = mlp_bd.shape, emb_bfd.shape[1] + 1
    acc = _acc(mlp_bd)
    t = np.empty((batch, vectors, d), dtype=acc)
    interaction_stack(mlp_bd, emb_bfd, t)
    z = np.empty((batch, vectors, vectors), dtype=acc)
    batched_gemm(t, t, z, trans_b=True)
    interaction_gather(mlp_bd, z, out_bo)


def interaction_bwd(mlp_bd, emb_bfd, grad_out_bo, grad_mlp_bd, grad_emb_bfd, t_bvd=None, z_bvv=None) -> None:
    """dT = dZ·T with dZ = G + Gᵀ (pair gradients scattered symmetrically); mlp adds its pass-through copy.

    On the CUDA path ``t_bvd`` must still hold forward's T (or be None: it is rebuilt) and ``z_bvv``
    is overwritten with dZ; the twin uses temporaries in the accumulate dtype.
    """
    (batch, d), num_f = mlp_bd.shape, emb_bfd.shape[1]
    acc = _acc(mlp_bd)
    t = np.empty((batch, num_f + 1, d), dtype=acc)
    interaction_stack(mlp_bd, emb_bfd, t)
    dz_mlp = np.empty((batch, 1, num_f + 1), dtype=acc)
    dz_emb = np.empty((batch, num_f, num_f + 1), dtype=acc)
    grad_mlp = np.empty((batch, d), dtype=acc)
    interaction_bwd_prepare(grad_out_bo.astype(acc), dz_mlp, dz_emb, grad_mlp)
    batched_gemm(dz_mlp, t, grad_mlp.reshape(batch, 1, d), beta=1.0)
    grad_mlp_bd[...] = grad_mlp
    batched_gemm(dz_emb, t, grad_emb_bfd)


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
