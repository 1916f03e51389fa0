"""NumPy twins of the CUDA kernels in ``kernels.cu`` (same names, same signatures).

Every function writes into its output argument. Axis letters: r rows (all axes before the
concatenated/sliced one, collapsed), k columns of one block, n columns of the wide tensor.
"""
from __future__ import annotations


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
