"""CuPy launchers of ``kernels.cu``, with the names and signatures of their NumPy twins in ``reference.py``.

Importing this module does not import CuPy; the kernels compile on first use. Arrays must be
C-contiguous and share one dtype (the engine's buffers are).

Example:
    >>> import cupy  # doctest: +SKIP
    >>> x = cupy.zeros((2, 4), dtype=cupy.float32)  # doctest: +SKIP
    >>> softmax_fwd(x, None, 1.0, cupy.empty_like(x))  # doctest: +SKIP
"""
from __future__ import annotations

import numpy as np

from hugectr_core.errors import BackendError
from hugectr_core.kernels import KernelModule

KERNEL_NAMES = ("softmax_fwd", "softmax_bwd", "sequence_mask", "gru_fwd_step", "gru_bwd_step")
DTYPES = ("float", "double", "__half")
KERNELS = KernelModule("hugectr_layers_sequence", [f"{n}<{t}>" for n in KERNEL_NAMES for t in DTYPES])


def _check(*arrays):
    dtype = arrays[0].dtype
    for a in arrays:
        if a.dtype != dtype:
            raise BackendError(f"hugectr_layers_sequence kernels: dtype {a.dtype} differs from {dtype}")
        if not a.flags.c_contiguous:
            raise BackendError("hugectr_layers_sequence kernels need C-contiguous arrays (the engine's buffers are)")
    return dtype


def softmax_fwd(x, mask, factor, y):
    from ._common import mask_heads  # noqa: PLC0415

    has_mask = mask is not None
    dtype = _check(x, y, *( [mask] if has_mask else []))
    cols = x.shape[-1]
    rows = x.size // cols
    heads = mask_heads(x.shape, mask.shape) if has_mask else 1
    seq_from = x.shape[-2] if x.ndim >= 2 else 1
    KERNELS.launch("softmax_fwd", dtype, rows, (x, mask if has_mask else x, np.int32(has_mask), np.float64(factor),
                                                np.int64(rows), np.int64(cols), np.int64(heads), np.int64(seq_from), y))
    return y


def softmax_bwd(dy, y, factor, dx):
    dtype = _check(dy, y, dx)
    cols = y.shape[-1]
    rows = y.size // cols
    KERNELS.launch("softmax_bwd", dtype, rows, (dy, y, np.float64(factor), np.int64(rows), np.int64(cols), dx))
    return dx


def sequence_mask(len_from_b, len_to_b, out_bij):
    dtype = _check(len_from_b, len_to_b, out_bij)
    b, _, lf, lt = out_bij.shape
    KERNELS.launch("sequence_mask", dtype, out_bij.size,
                   (len_from_b, len_to_b, np.int64(b), np.int64(lf), np.int64(lt), out_bij))
    return out_bij


def gru_fwd_step(xg_btg, hg_bg, bx_g, bh_g, h_prev_bn, t, gates_b4n, h_bn):
    dtype = _check(xg_btg, hg_bg, bx_g, bh_g, h_prev_bn, gates_b4n, h_bn)
    b, steps, _ = xg_btg.shape
    n = h_bn.shape[1]
    KERNELS.launch("gru_fwd_step", dtype, b * n, (xg_btg, hg_bg, bx_g, bh_g, h_prev_bn, np.int64(b), np.int64(steps),
                                                  np.int64(n), np.int64(t), gates_b4n, h_bn))
    return gates_b4n, h_bn


def gru_bwd_step(dy_btn, t, gates_b4n, h_prev_bn, dh_bn, dxg_btg, dhg_bg):
    dtype = _check(dy_btn, gates_b4n, h_prev_bn, dh_bn, dxg_btg, dhg_bg)
    b, steps, n = dy_btn.shape
    KERNELS.launch("gru_bwd_step", dtype, b * n, (dy_btn, gates_b4n, h_prev_bn, np.int64(b), np.int64(steps),
                                                  np.int64(n), np.int64(t), dh_bn, dxg_btg, dhg_bg))
    return dh_bn, dxg_btg, dhg_bg
