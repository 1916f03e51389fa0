"""CuPy launchers for ``kernels.cu``; same names and signatures as ``reference.py``.

CuPy is imported only when a kernel is first launched (through ``KernelModule``).
"""
from __future__ import annotations

import numpy as np

from hugectr_core.errors import BackendError
from hugectr_core.kernels import KernelModule

_NAMES = ("concat_fwd", "concat_bwd", "slice_fwd", "slice_bwd")
KERNELS = KernelModule("hugectr_layers_shape", [f"{n}<{t}>" for n in _NAMES for t in ("float", "double")])


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
