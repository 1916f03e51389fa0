"""Direct cuBLAS GEMMs for plugin launchers: transposes as op flags, ``beta``, TF32 as CuPy sets it.

``cupy.matmul`` copies transposed operands first in some cases (a batched Tᵀ, or a float32 ``x.T``
in a weight gradient: 0.595 against 0.435 ms at 65536x1024x1024 on an H100) and has no ``beta``.
These helpers call ``cublasGemmEx`` / ``cublasGemmStridedBatchedEx`` on C-contiguous CuPy arrays
with CuPy's handle and stream. The argument mappings are pure functions, tested on the CPU against
a column-major emulation (tests/test_cublas.py).

Row-major vs column-major: a row-major (r, c) buffer reads, in place, as the column-major (c, r)
matrix equal to its transpose. So the row-major ``out = op(a) @ op(b)`` is computed as the
column-major ``outᵀ = op(b)ᵀ @ op(a)ᵀ``: cuBLAS's first operand is ``b``, its second ``a``.

Example:
    >>> args = gemm_args((6, 3), (6, 4), (3, 4), trans_a=True)   # dW[K, N] = x[M, K]ᵀ @ dy[M, N]
    >>> (args["transa"], args["transb"], args["m"], args["n"], args["k"], args["lda"], args["ldb"], args["ldc"])
    (0, 1, 4, 3, 6, 4, 3, 4)
"""
from __future__ import annotations

import ctypes
import re

import numpy as np

from .errors import BackendError

# cuBLAS ABI constants (cublas_api.h, library_types.h), stable across CUDA 11-13.
CUBLAS_OP_N, CUBLAS_OP_T = 0, 1
CUBLAS_GEMM_DEFAULT = -1
CUDA_DATA_TYPE = {np.dtype(np.float16): 2, np.dtype(np.float32): 0, np.dtype(np.float64): 1}  # CUDA_R_16F/32F/64F
CUBLAS_COMPUTE_32F, CUBLAS_COMPUTE_32F_FAST_TF32, CUBLAS_COMPUTE_64F = 68, 77, 70
CUPY_COMPUTE_TYPE_TF32 = 7  # cupy._core._routines_linalg.COMPUTE_TYPE_TF32 (set by enable_tf32_compute)


def gemm_args(a_shape, b_shape, out_shape, trans_a=False, trans_b=False) -> dict:
    """cublasGemmEx arguments for the row-major ``out = op(a) @ op(b)`` of C-contiguous 2D arrays:
    m, n, k, transa, transb, lda, ldb, ldc (leading dimensions are the row-major widths)."""
    a_rows, a_cols = a_shape
    b_rows, b_cols = b_shape
    rows, inner = (a_cols, a_rows) if trans_a else (a_rows, a_cols)
    b_inner, cols = (b_cols, b_rows) if trans_b else (b_rows, b_cols)
    if b_inner != inner or tuple(out_shape) != (rows, cols):
        raise BackendError(f"gemm: shapes a {tuple(a_shape)} (trans_a={trans_a}), b {tuple(b_shape)} "
                           f"(trans_b={trans_b}) and out {tuple(out_shape)} do not form out = op(a) @ op(b)")
    return {"transa": CUBLAS_OP_T if trans_b else CUBLAS_OP_N, "transb": CUBLAS_OP_T if trans_a else CUBLAS_OP_N,
            "m": cols, "n": rows, "k": inner, "lda": b_cols, "ldb": a_cols, "ldc": cols}


def gemm_strided_batched_args(a_shape, b_shape, out_shape, trans_b=False) -> dict:
    """cublasGemmStridedBatchedEx arguments for row-major ``out[i] = a[i] @ op(b[i])``: as ``gemm_args``
    plus the element strides between batch entries and ``batch``."""
    batch, rows, inner = a_shape
    if trans_b:
        b_batch, cols, b_inner = b_shape  # b is (batch, n, k)
    else:
        b_batch, b_inner, cols = b_shape  # b is (batch, k, n)
    if b_batch != batch or b_inner != inner or tuple(out_shape) != (batch, rows, cols):
        raise BackendError(f"batched_gemm: shapes a {tuple(a_shape)}, b {tuple(b_shape)} (trans_b={trans_b}) "
                           f"and out {tuple(out_shape)} do not form out[i] = a[i] @ op(b[i])")
    return {"transa": CUBLAS_OP_T if trans_b else CUBLAS_OP_N, "transb": CUBLAS_OP_N,
            "m": cols, "n": rows, "k": inner,
            "lda": inner if trans_b else cols, "stride_a": cols * inner,
            "ldb": inner, "stride_b": rows * inner,
            "ldc": cols, "stride_c": rows * cols, "batch": batch}


def compute_type(dtype, allow_tf32: bool = True) -> int:
    """The compute type CuPy would pick: 64F for float64; for float32 FAST_TF32 when allowed and CuPy's
    float32 compute type is TF32 (``enable_tf32_compute``), else 32F; float16 sums in 32F."""
    dtype = np.dtype(dtype)
    if dtype == np.float64:
        return CUBLAS_COMPUTE_64F
    if dtype == np.float32 and allow_tf32:
        try:
            from cupy._core import _routines_linalg as linalg  # noqa: PLC0415 - GPU only

            if linalg.get_compute_type(np.float32) == CUPY_COMPUTE_TYPE_TF32:
                return CUBLAS_COMPUTE_32F_FAST_TF32
        except (ImportError, AttributeError):  # a CuPy without this private helper: exact fp32
            pass
    return CUBLAS_COMPUTE_32F


_BOUND_HANDLES: dict = {}  # device id -> CuPy's cuBLAS handle, as last bound to a stream here
_C_API = []  # libcublas through ctypes, loaded before the first recording
_C_INT, _C_PTR, _C_LL = ctypes.c_int, ctypes.c_void_p, ctypes.c_longlong
_C_SIGNATURES = {  # cublas_api.h
    "cublasGemmEx": [_C_PTR, _C_INT, _C_INT, _C_INT, _C_INT, _C_INT, _C_PTR, _C_PTR, _C_INT, _C_INT, _C_PTR, _C_INT,
                     _C_INT, _C_PTR, _C_PTR, _C_INT, _C_INT, _C_INT, _C_INT],
    "cublasGemmStridedBatchedEx": [_C_PTR, _C_INT, _C_INT, _C_INT, _C_INT, _C_INT, _C_PTR, _C_PTR, _C_INT, _C_INT,
                                   _C_LL, _C_PTR, _C_INT, _C_INT, _C_LL, _C_PTR, _C_PTR, _C_INT, _C_INT, _C_LL,
                                   _C_INT, _C_INT, _C_INT],
}


def _recording() -> bool:
    import cupy  # noqa: PLC0415 - GPU only

    return cupy.cuda.get_current_stream().is_capturing()


def handle():
    """CuPy's cuBLAS handle of the current device. While a CUDA graph records (``use_cuda_graph``) CuPy refuses
    to bind it to the stream, so the recorder binds it to the recording stream just before (``prepare_recording``)
    and the bound handle is used as it is."""
    import cupy  # noqa: PLC0415 - GPU only

    if _recording():
        return _BOUND_HANDLES[cupy.cuda.Device().id]
    return cupy.cuda.device.get_cublas_handle()  # CuPy's wrapper binds it to the current stream


def prepare_recording():
    """Ready this device's cuBLAS for a CUDA graph about to record on the current stream: bind CuPy's handle
    to that stream and load libcublas itself (``_c_api``). ``get_cublas_handle`` alone binds nothing
    (CuPy's wrappers set the stream at each call), and a handle left on the compute stream would run the
    recording's GEMMs there, at once, outside the graph. Returns the handle."""
    import cupy  # noqa: PLC0415 - GPU only

    bound = cupy.cuda.device.get_cublas_handle()
    _cublas().setStream(bound, cupy.cuda.get_current_stream().ptr)  # refused only once the stream records
    _c_api()
    _BOUND_HANDLES[cupy.cuda.Device().id] = bound
    return bound


def _c_api():
    """libcublas itself (the copy CuPy loaded), through ctypes: CuPy's wrappers refuse every cuBLAS call
    while a stream records a CUDA graph, where cuBLAS itself records fine on a handle bound beforehand."""
    if not _C_API:
        import cupy  # noqa: PLC0415 - GPU only

        version = _cublas().getVersion(cupy.cuda.device.get_cublas_handle())  # CuPy's module loads libcublas
        with open("/proc/self/maps") as maps:
            lib = ctypes.CDLL(libcublas_path(maps, version))
        for name, argtypes in _C_SIGNATURES.items():
            getattr(lib, name).argtypes, getattr(lib, name).restype = argtypes, ctypes.c_int
        _C_API.append(lib)
    return _C_API[0]


def libcublas_path(mapped_lines, version: int) -> str:
    """The file of the libcublas that CuPy uses, among the libraries mapped into this process (lines of
    /proc/self/maps): the one of CuPy's major version. Another copy (say torch's, of another CUDA) would not
    know CuPy's handle, so none or several candidates is an error, and the graphs stay off."""
    major = version // 10000 if version >= 100000 else version // 1000  # CUBLAS_VERSION: 12+ vs 11 layout
    pattern = re.compile(rf"/libcublas\.so\.{major}(\.[0-9.]*)?$")
    paths = sorted({line.split()[-1] for line in mapped_lines if pattern.search(line.rstrip())})
    if len(paths) != 1:
        raise BackendError(f"use_cuda_graph: found {len(paths)} copies of libcublas {major} in this process "
                           f"({', '.join(paths) or 'none'}), need exactly one to record GEMMs")
    return paths[0]


def _call(name: str, *args) -> None:
    """One cuBLAS GEMM: CuPy's wrapper (which binds the handle to the current stream and checks the status),
    or the C function itself while recording."""
    if not _recording():
        getattr(_cublas(), {"cublasGemmEx": "gemmEx", "cublasGemmStridedBatchedEx": "gemmStridedBatchedEx"}[name])(
            *args)
        return
    status = getattr(_c_api(), name)(*args)
    if status != 0:
        raise BackendError(f"{name} failed with cuBLAS status {status} while recording a CUDA graph")


def _cublas():
    try:
        from cupy_backends.cuda.libs import cublas  # noqa: PLC0415 - GPU only
    except ImportError:  # layouts without cupy_backends
        from cupy.cuda import cublas  # noqa: PLC0415
    return cublas


def _prepare(a, b, out):
    """The common dtype of the operands, after checking dtypes and contiguity."""
    dtype = np.dtype(out.dtype)
    if a.dtype != dtype or b.dtype != dtype or dtype not in CUDA_DATA_TYPE:
        raise BackendError(f"gemm: dtypes a {a.dtype}, b {b.dtype}, out {dtype}; all must be one of float16, "
                           f"float32, float64")
    for name, x in (("a", a), ("b", b), ("out", out)):
        if not x.flags.c_contiguous:
            raise BackendError(f"gemm: operand {name} must be C-contiguous, got strides {x.strides}")
    return dtype


def _scalars(dtype, beta: float):
    scalar = np.float64 if dtype == np.float64 else np.float32  # alpha/beta in the compute precision
    return np.array(1, dtype=scalar), np.array(beta, dtype=scalar)


def _nothing_to_multiply(out, args: dict, beta: float) -> bool:
    """True when no GEMM is needed: an empty output or batch, or k == 0, where cuBLAS may leave C
    untouched, so beta·C is written here."""
    if out.size == 0 or args.get("batch", 1) == 0:
        return True
    if args["k"] == 0:
        if beta:
            out *= beta
        else:
            out.fill(0)
        return True
    return False


def gemm(a, b, out, trans_a=False, trans_b=False, beta=0.0, allow_tf32=True):
    """``out = op(a) @ op(b) + beta·out`` (2D, row-major, C-contiguous CuPy arrays, no temporaries)."""
    dtype = _prepare(a, b, out)
    args = gemm_args(a.shape, b.shape, out.shape, trans_a, trans_b)
    if _nothing_to_multiply(out, args, beta):
        return out
    one, scale = _scalars(dtype, beta)
    kind = CUDA_DATA_TYPE[dtype]
    _call(
        "cublasGemmEx", handle(), args["transa"], args["transb"], args["m"], args["n"], args["k"],
        one.ctypes.data, b.data.ptr, kind, args["lda"], a.data.ptr, kind, args["ldb"],
        scale.ctypes.data, out.data.ptr, kind, args["ldc"], compute_type(dtype, allow_tf32), CUBLAS_GEMM_DEFAULT)
    return out


def gemm_strided_batched(a, b, out, trans_b=False, beta=0.0, allow_tf32=True):
    """``out[i] = a[i] @ op(b[i]) + beta·out[i]`` (3D, row-major, C-contiguous CuPy arrays)."""
    dtype = _prepare(a, b, out)
    args = gemm_strided_batched_args(a.shape, b.shape, out.shape, trans_b)
    if _nothing_to_multiply(out, args, beta):
        return out
    one, scale = _scalars(dtype, beta)
    kind = CUDA_DATA_TYPE[dtype]
    _call(
        "cublasGemmStridedBatchedEx", handle(), args["transa"], args["transb"], args["m"], args["n"], args["k"],
        one.ctypes.data, b.data.ptr, kind, args["lda"], args["stride_a"],
        a.data.ptr, kind, args["ldb"], args["stride_b"],
        scale.ctypes.data, out.data.ptr, kind, args["ldc"], args["stride_c"],
        args["batch"], compute_type(dtype, allow_tf32), CUBLAS_GEMM_DEFAULT)
    return out


def matmul(xp, a, b, out, trans_a=False, trans_b=False):
    """``out = op(a) @ op(b)`` for 2D arrays on either backend: NumPy's matmul on the CPU; on the GPU one
    direct cuBLAS call (``gemm``), which a CUDA graph can capture where ``cupy.matmul`` is refused
    (``use_cuda_graph``). Operands that are not C-contiguous views fall back to ``cupy.matmul``."""
    lhs, rhs = (a.T if trans_a else a), (b.T if trans_b else b)
    if xp is np or not (a.flags.c_contiguous and b.flags.c_contiguous and out.flags.c_contiguous) \
            or a.dtype != out.dtype or b.dtype != out.dtype:
        return xp.matmul(lhs, rhs, out=out)
    return gemm(a, b, out, trans_a=trans_a, trans_b=trans_b)
