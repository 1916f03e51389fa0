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

from hugectr_core import cublas
from hugectr_core.errors import BackendError
from hugectr_core.kernels import KernelModule, ctype

from . import epilogue
from ._common import TILE_THREADS, tile_cols

KERNEL_DTYPES = (np.float32, np.float64, np.float16)
KERNEL_NAMES = ("bias_act_fwd", "relu_bwd", "bias_grad", "relu_bias_bwd", "bias_partials_sum",
                "bias_act_fwd_v16", "relu_bias_bwd_v16")
KERNELS = KernelModule("hugectr_layers_dense", [f"{name}<{ctype(t)}>" for name in KERNEL_NAMES for t in KERNEL_DTYPES])
BIAS_GRAD_BLOCK = TILE_THREADS  # fixed by the shared-memory tile of bias_grad and relu_bias_bwd
TILE_COLS_V16 = 32  # relu_bias_bwd_v16's tile width: outputs >= 32 wide (tile_cols(n) == 32)
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


def vector_width(dtype) -> int:
    """Elements of ``dtype`` in one 16-byte load (the ``*_v16`` kernels)."""
    return 16 // np.dtype(dtype).itemsize


def _fits_v16(n: int, *arrays) -> bool:
    """The 16-byte kernels apply: rows a whole number of vectors and every buffer 16-byte aligned."""
    return n % vector_width(arrays[0].dtype) == 0 and all(a.data.ptr % 16 == 0 for a in arrays)


def bias_act_fwd(y_mn, bias_n, relu: bool):
    """In place: ``y = relu?(y + bias)``; ``bias_n`` (n,) or (1, n), or None for no bias."""
    dtype = _check(y_mn) if bias_n is None else _check(y_mn, bias_n)
    m, n = y_mn.shape
    bias = y_mn if bias_n is None else bias_n  # a valid pointer the kernel never reads
    args = (y_mn, bias, np.int32(bias_n is not None), np.int32(bool(relu)), np.int64(m), np.int64(n))
    if _fits_v16(n, y_mn, bias):
        KERNELS.launch("bias_act_fwd_v16", dtype, m * n // vector_width(dtype), args)
    else:
        KERNELS.launch("bias_act_fwd", dtype, m * n, args)
    return y_mn


def linear_fwd(x_mk, w_kn, bias_n, relu: bool, y_mn):
    """``y = relu?(x @ W + b)``: one cuBLASLt GEMM with a bias epilogue when nvmath-python is installed
    (``epilogue.py``), else the GEMM and then ``bias_act_fwd``."""
    import cupy  # noqa: PLC0415 - only reached on the GPU backend

    if epilogue.linear(x_mk, w_kn, bias_n, relu, y_mn):
        return y_mn
    cublas.matmul(cupy, x_mk, w_kn, y_mn)
    if bias_n is not None or relu:
        bias_act_fwd(y_mn, bias_n, relu)
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

        cublas.matmul(cupy, ones_m.reshape(1, m), dy_mn, out_n.reshape(1, n))
        return out_n
    dtype = _check(dy_mn, out_n)
    cols = tile_cols(n)  # narrow outputs: more row lanes per column
    grid = max(1, min((n + cols - 1) // cols, 65535))
    KERNELS.function("bias_grad", dtype)((grid,), (BIAS_GRAD_BLOCK,),
                                         (dy_mn, out_n, np.int64(m), np.int64(n), np.int32(cols)))
    return out_n


# -- fused ReLU backward + bias gradient -------------------------------------------------------------
def acc_dtype(dtype):
    """The kernels' acc_t<T> as a NumPy dtype: float32 for float16, the dtype itself otherwise."""
    return np.dtype(np.float32) if np.dtype(dtype) == np.float16 else np.dtype(dtype)


def relu_bias_launch_geometry(m: int, n: int, p: int) -> dict:
    """Grid, block, rows per row block and tile width of ``relu_bias_bwd`` for (m, n) and P row blocks.

    Block y covers rows ``[y * rows_per_block, (y + 1) * rows_per_block)``; ``P * rows_per_block >= m``
    so every row belongs to exactly one block (trailing blocks may be empty and write zero partials).
    """
    if p < 1:
        raise BackendError(f"relu_bias_bwd: the partials buffer needs at least 1 row, got {p}")
    cols = tile_cols(n)
    return {"grid": (max(1, min(-(-n // cols), 65535)), p), "block": (TILE_THREADS,),
            "rows_per_block": -(-m // p), "cols": cols}


def relu_bias_bwd(dy_mn, y_mn, out_mn, dbias_n, partials_pn):
    """``out = dy`` where the ReLU output ``y > 0`` else 0, and ``dbias = column sums of out``, in one
    pass over dy and y plus a tiny second kernel over the (P, n) ``partials_pn`` (acc_t, scratch).

    Deterministic (no atomics). ``out`` may alias ``dy``; ``dbias_n`` has n elements (any shape).
    """
    dtype = _check(dy_mn, y_mn, out_mn, dbias_n)
    m, n = out_mn.shape
    if tuple(dy_mn.shape) != (m, n) or tuple(y_mn.shape) != (m, n) or dbias_n.size != n:
        raise BackendError(f"relu_bias_bwd: dy {tuple(dy_mn.shape)}, y {tuple(y_mn.shape)}, out {(m, n)} and "
                           f"dbias ({dbias_n.size} elements) do not match")
    want = acc_dtype(dtype)
    if partials_pn.dtype != want or partials_pn.ndim != 2 or partials_pn.shape[1] != n \
            or not partials_pn.flags.c_contiguous:
        raise BackendError(f"relu_bias_bwd: partials must be a C-contiguous (P, {n}) {want.name} array, got "
                           f"{partials_pn.dtype} {tuple(partials_pn.shape)}")
    p = partials_pn.shape[0]
    geo = relu_bias_launch_geometry(m, n, p)
    args = (dy_mn, y_mn, out_mn, partials_pn, np.int64(m), np.int64(n), np.int64(geo["rows_per_block"]))
    if geo["cols"] == TILE_COLS_V16 and _fits_v16(n, dy_mn, y_mn, out_mn, partials_pn):
        KERNELS.function("relu_bias_bwd_v16", dtype)(geo["grid"], geo["block"], args)  # same grid and partials
    else:
        KERNELS.function("relu_bias_bwd", dtype)(geo["grid"], geo["block"], args + (np.int32(geo["cols"]),))
    bias_partials_sum(partials_pn, dbias_n)
    return out_mn, dbias_n


def bias_partials_sum(partials_pn, dbias_n):
    """``dbias[c] = sum_p partials[p, c]`` (partials in acc_t, summed in a fixed order)."""
    dtype = _check(dbias_n)
    p, n = partials_pn.shape
    if partials_pn.dtype != acc_dtype(dtype) or dbias_n.size != n or not partials_pn.flags.c_contiguous:
        raise BackendError(f"bias_partials_sum: partials {partials_pn.dtype} {tuple(partials_pn.shape)} do not "
                           f"fit dbias {dtype} with {dbias_n.size} elements")
    KERNELS.launch("bias_partials_sum", dtype, n, (partials_pn, dbias_n, np.int64(p), np.int64(n)))
    return dbias_n


# -- dW = x^T @ dy through cuBLAS, reading x transposed in place ----------------------------------------
def weight_grad(x_mk, dy_mn, dw_kn):
    """``dW = x^T @ dy`` with one cublasGemmEx that reads ``x`` transposed in place.

    ``cupy.matmul(x.T, dy)`` on the transposed view is slower in float32/TF32 (0.595 ms against
    0.435 ms for 65536x1024x1024 on an H100); expressing the transpose as an op flag avoids that.
    """
    import cupy  # noqa: PLC0415 - only reached on the GPU backend

    _check(x_mk, dy_mn, dw_kn)
    cublas.gemm(cupy.ascontiguousarray(x_mk), cupy.ascontiguousarray(dy_mn), dw_kn, trans_a=True)
    return dw_kn
