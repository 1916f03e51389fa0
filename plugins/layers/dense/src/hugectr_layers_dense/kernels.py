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

from ._common import TILE_THREADS, tile_cols

KERNEL_DTYPES = (np.float32, np.float64, np.float16)
KERNEL_NAMES = ("bias_act_fwd", "relu_bwd", "bias_grad", "relu_bias_bwd", "bias_partials_sum")
KERNELS = KernelModule("hugectr_layers_dense", [f"{name}<{ctype(t)}>" for name in KERNEL_NAMES for t in KERNEL_DTYPES])
BIAS_GRAD_BLOCK = TILE_THREADS  # fixed by the shared-memory tile of bias_grad and relu_bias_bwd
GEMM_BIAS_GRAD_MIN_COLS = 32  # from this width on the bias gradient is ones(1, m) @ dy (cuBLAS)

# cuBLAS ABI constants (cublas_api.h, library_types.h), stable across CUDA 11-13. Same table as
# hugectr_layers_interactions.kernels (copied, not imported: plugins do not depend on each other).
CUBLAS_OP_N, CUBLAS_OP_T = 0, 1
CUBLAS_GEMM_DEFAULT = -1
CUDA_DATA_TYPE = {np.dtype(np.float16): 2, np.dtype(np.float32): 0, np.dtype(np.float64): 1}  # CUDA_R_16F/32F/64F
CUBLAS_COMPUTE_32F, CUBLAS_COMPUTE_32F_FAST_TF32, CUBLAS_COMPUTE_64F = 68, 77, 70
CUPY_COMPUTE_TYPE_TF32 = 7  # cupy._core._routines_linalg.COMPUTE_TYPE_TF32 (set by enable_tf32_compute)


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
    KERNELS.function("relu_bias_bwd", dtype)(
        geo["grid"], geo["block"],
        (dy_mn, y_mn, out_mn, partials_pn, np.int64(m), np.int64(n), np.int64(geo["rows_per_block"]),
         np.int32(geo["cols"])))
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
def gemm_args(a_shape, b_shape, out_shape, trans_a=False, trans_b=False) -> dict:
    """cublasGemmEx arguments for the row-major product ``out = op(a) @ op(b)`` of C-contiguous 2D arrays.

    cuBLAS is column-major: a row-major (r, c) array is, in place, the column-major (c, r) matrix equal
    to its transpose. So the row-major ``out`` (rows, cols) is computed as the column-major product
    ``out^T = op(b)^T @ op(a)^T``: cuBLAS's first operand is ``b`` (no transpose flag when
    ``trans_b`` is False, because b's buffer already reads as b^T), its second is ``a``. Leading
    dimensions are the row-major widths. Returns m, n, k, transa, transb, lda, ldb, ldc and
    ``first`` = "b", ``second`` = "a" naming which array goes where.

    Example (dW[K, N] = x[M, K]^T @ dy[M, N]):
        >>> args = gemm_args((6, 3), (6, 4), (3, 4), trans_a=True)
        >>> (args["transa"], args["transb"], args["m"], args["n"], args["k"], args["lda"], args["ldb"], args["ldc"])
        (0, 1, 4, 3, 6, 4, 3, 4)
    """
    a_rows, a_cols = a_shape
    b_rows, b_cols = b_shape
    rows, inner = (a_cols, a_rows) if trans_a else (a_rows, a_cols)
    b_inner, cols = (b_cols, b_rows) if trans_b else (b_rows, b_cols)
    if b_inner != inner or tuple(out_shape) != (rows, cols):
        raise BackendError(f"gemm: shapes a {tuple(a_shape)} (trans_a={trans_a}), b {tuple(b_shape)} "
                           f"(trans_b={trans_b}) and out {tuple(out_shape)} do not form out = op(a) @ op(b)")
    return {"transa": CUBLAS_OP_T if trans_b else CUBLAS_OP_N, "transb": CUBLAS_OP_T if trans_a else CUBLAS_OP_N,
            "m": cols, "n": rows, "k": inner, "lda": b_cols, "ldb": a_cols, "ldc": cols,
            "first": "b", "second": "a"}


def compute_type(dtype) -> int:
    """cuBLAS compute type as CuPy would pick it: 64F for float64; for float32, FAST_TF32 when CuPy's
    float32 compute type is TF32 (``enable_tf32_compute``), else 32F; float16 sums in 32F."""
    if np.dtype(dtype) == np.float64:
        return CUBLAS_COMPUTE_64F
    if np.dtype(dtype) == np.float32:
        try:
            from cupy._core import _routines_linalg as linalg  # noqa: PLC0415 - GPU only

            if linalg.get_compute_type(np.float32) == CUPY_COMPUTE_TYPE_TF32:
                return CUBLAS_COMPUTE_32F_FAST_TF32
        except (ImportError, AttributeError):  # a CuPy without this private helper: exact fp32
            pass
    return CUBLAS_COMPUTE_32F


def _cublas():
    try:
        from cupy_backends.cuda.libs import cublas  # noqa: PLC0415 - GPU only
    except ImportError:  # layouts without cupy_backends
        from cupy.cuda import cublas  # noqa: PLC0415
    return cublas


def weight_grad(x_mk, dy_mn, dw_kn):
    """``dW = x^T @ dy`` with one cublasGemmEx that reads ``x`` transposed in place.

    ``cupy.matmul(x.T, dy)`` on the transposed view is slower in float32/TF32 (0.595 ms against
    0.435 ms for 65536x1024x1024 on an H100); expressing the transpose as an op flag avoids that.
    """
    import cupy  # noqa: PLC0415 - only reached on the GPU backend

    dtype = _check(x_mk, dy_mn, dw_kn)
    args = gemm_args(x_mk.shape, dy_mn.shape, dw_kn.shape, trans_a=True)
    if dw_kn.size == 0:
        return dw_kn
    if args["k"] == 0:  # empty sum: cuBLAS may leave C untouched
        dw_kn.fill(0)
        return dw_kn
    scalar = np.float64 if dtype == np.float64 else np.float32  # alpha/beta in the compute precision
    one, zero = np.array(1, dtype=scalar), np.array(0, dtype=scalar)
    data_type = CUDA_DATA_TYPE[np.dtype(dtype)]
    _cublas().gemmEx(
        cupy.cuda.device.get_cublas_handle(), args["transa"], args["transb"], args["m"], args["n"], args["k"],
        one.ctypes.data, dy_mn.data.ptr, data_type, args["lda"],
        x_mk.data.ptr, data_type, args["ldb"],
        zero.ctypes.data, dw_kn.data.ptr, data_type, args["ldc"],
        compute_type(dtype), CUBLAS_GEMM_DEFAULT)
    return dw_kn
