"""CuPy launchers of ``kernels.cu``, with the signatures of their NumPy twins in ``reference.py``.

Importing this module does not import CuPy; the kernels compile on first use. Every kernel is
instantiated for float, double and __half (float16 tensors accumulate in float).

Example:
    >>> import cupy  # doctest: +SKIP
    >>> y = cupy.ones((4, 3), dtype=cupy.float16)  # doctest: +SKIP
    >>> bias_act_fwd(y, cupy.ones(3, dtype=cupy.float16), relu=True)  # doctest: +SKIP
"""
from __future__ import annotations

import numpy as np

from hugectr_core.errors import BackendError
from hugectr_core.kernels import KernelModule, ctype

KERNEL_DTYPES = (np.float32, np.float64, np.float16)
KERNELS = KernelModule("hugectr_layers_dense", [f"{name}<{ctype(t)}>" for name in ("bias_act_fwd", "relu_bwd", "bias_grad")
                                                for t in KERNEL_DTYPES])
BIAS_GRAD_BLOCK = 256  # fixed by bias_grad's shared-memory tile
GEMM_BIAS_GRAD_MIN_COLS = 32  # from this width on the bias gradient is ones(1, m) @ dy (cuBLAS)


def _check(*arrays):
    dtype = arrays[0].dtype
    if dtype not in KERNEL_DTYPES:
        raise BackendError(f"hugectr_layers_dense kernels support float16, float32 and float64, got {dtype}")
    for a in arrays:
        if a.dtype != dtype:
            raise BackendError(f"hugectr_layers_dense kernels: mixed dtypes {dtype} and {a.dtype}")
        if not a.flags.c_contiguous:
            raise BackendError("hugectr_layers_dense kernels need C-contiguous arrays (the engine's buffers are)")
    return dtype


def bias_act_fwd(y_mn, bias_n, relu: bool):
    """In place: ``y = relu?(y + bias)``; ``bias_n`` (n,) or (1, n), or None for no bias."""
    dtype = _check(y_mn) if bias_n is None else _check(y_mn, bias_n)
    m, n = y_mn.shape
    bias = y_mn if bias_n is None else bias_n  # a valid pointer the kernel never reads
    KERNELS.launch("bias_act_fwd", dtype, m * n,
                   (y_mn, bias, np.int32(bias_n is not None), np.int32(bool(relu)), np.int64(m), np.int64(n)))
    return y_mn


def relu_bwd(dy, y, out):
    """``out = dy`` where the ReLU output ``y > 0``, else 0 (``out`` may alias ``dy``)."""
    dtype = _check(dy, y, out)
    KERNELS.launch("relu_bwd", dtype, out.size, (dy, y, out, np.int64(out.size)))
    return out


def bias_grad(dy_mn, out_n, ones_m=None):
    """Column sums: ``out[c] = sum_r dy[r, c]``; ``out_n`` has n elements (any shape).

    ``ones_m`` (m elements, all 1, the layer's ``ones`` workspace) enables the GEMM path
    ``ones(1, m) @ dy`` for outputs at least ``GEMM_BIAS_GRAD_MIN_COLS`` wide: cuBLAS reads dy
    once at full bandwidth, where the column-tile kernel has one block per 32 columns only.
    Narrow outputs (N=1 logits) keep the kernel, which spreads the rows over 256 lanes.
    """
    m, n = dy_mn.shape
    if ones_m is not None and n >= GEMM_BIAS_GRAD_MIN_COLS:
        _check(dy_mn, out_n, ones_m)
        if ones_m.size != m:
            raise BackendError(f"bias_grad: ones vector has {ones_m.size} elements, dy has {m} rows")
        import cupy  # noqa: PLC0415 - only reached on the GPU backend

        cupy.matmul(ones_m.reshape(1, m), dy_mn, out=out_n.reshape(1, n))
        return out_n
    dtype = _check(dy_mn, out_n)
    cols = min(32, 1 << max(0, (n - 1).bit_length()))  # narrow outputs: more row lanes per column
    grid = max(1, min((n + cols - 1) // cols, 65535))
    KERNELS.function("bias_grad", dtype)((grid,), (BIAS_GRAD_BLOCK,),
                                         (dy_mn, out_n, np.int64(m), np.int64(n), np.int32(cols)))
    return out_n
