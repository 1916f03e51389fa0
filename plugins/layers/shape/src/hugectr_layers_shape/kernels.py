"""CuPy launchers for ``kernels.cu``; same names and signatures as ``reference.py``.

CuPy is imported only when a kernel is first launched (through ``KernelModule``).
"""
from __future__ import annotations

import functools

import numpy as np

from hugectr_core.errors import BackendError
from hugectr_core.kernels import KernelModule

_NAMES = ("concat_fwd", "concat_bwd", "slice_fwd", "slice_bwd", "select_fwd", "select_bwd",
          "scale_fwd", "scale_bwd", "fused_reshape_concat_fwd", "fused_reshape_concat_bwd")
KERNELS = KernelModule("hugectr_layers_shape",
                       [f"{n}<{t}>" for n in _NAMES for t in ("float", "double", "__half")])


def _contiguous_out(array, what: str):
    if not array.flags.c_contiguous:
        raise BackendError(f"{what}: output must be C-contiguous, got strides {array.strides}")
    return array


def _launch(name, src, dst, wide_cols, offset):
    """One column-block copy between a (rows, k) block and a (rows, n) tensor."""
    rows, k = (src if name in ("concat_fwd", "slice_bwd") else dst).shape
    KERNELS.launch(name, src.dtype, rows * k,
                   (src, dst, np.int64(rows), np.int64(wide_cols), np.int64(k), np.int64(offset)))


def concat_fwd(in_rk, out_rn, col_offset: int) -> None:
    in_rk = _as_contiguous(in_rk)
    _launch("concat_fwd", in_rk, _contiguous_out(out_rn, "concat_fwd"), out_rn.shape[1], col_offset)


def concat_bwd(grad_out_rn, grad_in_rk, col_offset: int) -> None:
    grad_out_rn = _as_contiguous(grad_out_rn)
    _launch("concat_bwd", grad_out_rn, _contiguous_out(grad_in_rk, "concat_bwd"), grad_out_rn.shape[1], col_offset)


def slice_fwd(in_rn, out_rk, col_start: int) -> None:
    in_rn = _as_contiguous(in_rn)
    _launch("slice_fwd", in_rn, _contiguous_out(out_rk, "slice_fwd"), in_rn.shape[1], col_start)


def slice_bwd(grad_out_rk, grad_in_rn, col_start: int) -> None:
    grad_out_rk = _as_contiguous(grad_out_rk)
    _launch("slice_bwd", grad_out_rk, _contiguous_out(grad_in_rn, "slice_bwd"), grad_in_rn.shape[1], col_start)


def _as_contiguous(array):
    import cupy  # noqa: PLC0415 - launchers only run on CuPy arrays

    return cupy.ascontiguousarray(array)


def _device_index(index_q):
    """The index list as a device int64 array (cached per list and device: it never changes)."""
    import cupy  # noqa: PLC0415

    return _cached_index(tuple(int(i) for i in index_q), cupy.cuda.Device().id)


@functools.lru_cache(maxsize=256)
def _cached_index(index, device_id):
    import cupy  # noqa: PLC0415

    return cupy.asarray(index, dtype=cupy.int64)


def select_fwd(in_oxi, index_q, out_oqi) -> None:
    in_oxi = _as_contiguous(in_oxi)
    outer, x, inner = in_oxi.shape
    q = out_oqi.shape[1]
    KERNELS.launch("select_fwd", in_oxi.dtype, out_oqi.size,
                   (in_oxi, _device_index(index_q), _contiguous_out(out_oqi, "select_fwd"),
                    np.int64(outer), np.int64(x), np.int64(q), np.int64(inner)))


def select_bwd(grad_out_oqi, index_q, grad_in_oxi) -> None:
    grad_out_oqi = _as_contiguous(grad_out_oqi)
    outer, x, inner = grad_in_oxi.shape
    q = grad_out_oqi.shape[1]
    KERNELS.launch("select_bwd", grad_out_oqi.dtype, grad_in_oxi.size,
                   (grad_out_oqi, _device_index(index_q), _contiguous_out(grad_in_oxi, "select_bwd"),
                    np.int64(outer), np.int64(x), np.int64(q), np.int64(inner)))


def scale_fwd(in_pi, out_pfi) -> None:
    in_pi = _as_contiguous(in_pi)
    outer, factor, inner = out_pfi.shape
    KERNELS.launch("scale_fwd", in_pi.dtype, out_pfi.size,
                   (in_pi, _contiguous_out(out_pfi, "scale_fwd"), np.int64(outer), np.int64(factor), np.int64(inner)))


def scale_bwd(grad_out_pfi, grad_in_pi) -> None:
    grad_out_pfi = _as_contiguous(grad_out_pfi)
    outer, factor, inner = grad_out_pfi.shape
    KERNELS.launch("scale_bwd", grad_out_pfi.dtype, grad_in_pi.size,
                   (grad_out_pfi, _contiguous_out(grad_in_pi, "scale_bwd"),
                    np.int64(outer), np.int64(factor), np.int64(inner)))


def fused_reshape_concat_fwd(in_bse, hist_rn, tgt_bn, col_offset: int) -> None:
    in_bse = _as_contiguous(in_bse)
    batch, slots, e = in_bse.shape
    KERNELS.launch("fused_reshape_concat_fwd", in_bse.dtype, in_bse.size,
                   (in_bse, _contiguous_out(hist_rn, "fused_reshape_concat_fwd"),
                    _contiguous_out(tgt_bn, "fused_reshape_concat_fwd"), np.int64(batch), np.int64(slots),
                    np.int64(e), np.int64(tgt_bn.shape[1]), np.int64(col_offset)))


def fused_reshape_concat_bwd(grad_hist_rn, grad_tgt_bn, grad_in_bse, col_offset: int) -> None:
    grad_hist_rn, grad_tgt_bn = _as_contiguous(grad_hist_rn), _as_contiguous(grad_tgt_bn)
    batch, slots, e = grad_in_bse.shape
    KERNELS.launch("fused_reshape_concat_bwd", grad_tgt_bn.dtype, grad_in_bse.size,
                   (grad_hist_rn, grad_tgt_bn, _contiguous_out(grad_in_bse, "fused_reshape_concat_bwd"),
                    np.int64(batch), np.int64(slots), np.int64(e), np.int64(grad_tgt_bn.shape[1]),
                    np.int64(col_offset)))
