"""NumPy twins of the CUDA kernels in ``kernels.cu`` (same names, same signatures).

Every function writes into its output argument. Axis letters: r rows (all axes before the
concatenated/sliced one, collapsed), k columns of one block, n columns of the wide tensor;
Select o outer, x selected axis, q len(index), i inner; Scale p outer, f replicas, i inner;
FusedReshapeConcat b batch, s slot, e input width. Sums run in float32 for float16 arrays (acc_t).
"""
from __future__ import annotations

import numpy as np


def concat_fwd(in_rk, out_rn, col_offset: int) -> None:
    """out[:, off:off+k] = in."""
    out_rn[:, col_offset:col_offset + in_rk.shape[1]] = in_rk


def concat_bwd(grad_out_rn, grad_in_rk, col_offset: int) -> None:
    """grad_in = grad_out[:, off:off+k]."""
    grad_in_rk[...] = grad_out_rn[:, col_offset:col_offset + grad_in_rk.shape[1]]


def slice_fwd(in_rn, out_rk, col_start: int) -> None:
    """out = in[:, start:start+k]."""
    out_rk[...] = in_rn[:, col_start:col_start + out_rk.shape[1]]


def slice_bwd(grad_out_rk, grad_in_rn, col_start: int) -> None:
    """grad_in[:, start:start+k] += grad_out (accumulates: slice ranges may overlap)."""
    grad_in_rn[:, col_start:col_start + grad_out_rk.shape[1]] += grad_out_rk


def _acc(array):
    """The accumulate dtype of the CUDA kernels (acc_t): float32 for float16, the dtype otherwise."""
    return np.float32 if array.dtype == np.float16 else array.dtype


def select_fwd(in_oxi, index_q, out_oqi) -> None:
    """out[o, q, i] = in[o, index[q], i]."""
    out_oqi[...] = in_oxi[:, np.asarray(index_q, dtype=np.int64), :]


def select_bwd(grad_out_oqi, index_q, grad_in_oxi) -> None:
    """grad_in[o, j, i] = Σ_{q: index[q] == j} grad_out[o, q, i] (repeated indices add up)."""
    acc = np.zeros(grad_in_oxi.shape, dtype=_acc(grad_in_oxi))
    np.add.at(acc, (slice(None), np.asarray(index_q, dtype=np.int64), slice(None)), grad_out_oqi.astype(acc.dtype))
    grad_in_oxi[...] = acc


def scale_fwd(in_pi, out_pfi) -> None:
    """out[p, r, i] = in[p, i] for every replica r < f."""
    out_pfi[...] = in_pi[:, None, :]


def scale_bwd(grad_out_pfi, grad_in_pi) -> None:
    """grad_in[p, i] = Σ_r grad_out[p, r, i]: the replicas' gradients add up."""
    grad_in_pi[...] = grad_out_pfi.sum(axis=1, dtype=_acc(grad_in_pi))


def fused_reshape_concat_fwd(in_bse, hist_rn, tgt_bn, col_offset: int) -> None:
    """Slots 0..S-2 of one input into history columns [off, off+e), slot S-1 into target columns."""
    batch, slots, e = in_bse.shape
    hist_rn[:, col_offset:col_offset + e] = in_bse[:, :slots - 1, :].reshape(batch * (slots - 1), e)
    tgt_bn[:, col_offset:col_offset + e] = in_bse[:, slots - 1, :]


def fused_reshape_concat_bwd(grad_hist_rn, grad_tgt_bn, grad_in_bse, col_offset: int) -> None:
    """The inverse gather of ``fused_reshape_concat_fwd``."""
    batch, slots, e = grad_in_bse.shape
    grad_in_bse[:, :slots - 1, :] = grad_hist_rn[:, col_offset:col_offset + e].reshape(batch, slots - 1, e)
    grad_in_bse[:, slots - 1, :] = grad_tgt_bn[:, col_offset:col_offset + e]
