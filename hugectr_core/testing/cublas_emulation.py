"""Column-major emulations of cublasGemmEx and cublasGemmStridedBatchedEx on flat NumPy buffers (slow,
exact): the CPU check of every argument mapping in hugectr_core.cublas, and of launchers that use it.

Example:
    >>> import numpy as np
    >>> from hugectr_core import cublas
    >>> a, b, out = np.arange(6.).reshape(2, 3), np.arange(12.).reshape(3, 4), np.empty((2, 4))
    >>> emulate_gemm(cublas.gemm_args(a.shape, b.shape, out.shape), b, a, out)
    >>> bool(np.allclose(out, a @ b))
    True
"""
from __future__ import annotations

import numpy as np


def _operand(buf, base, ld, trans, rows, cols):
    """op(X) as a (rows, cols) matrix, X column-major with leading dimension ld, starting at base."""
    r, c = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    return buf[base + (c + r * ld if trans else r + c * ld)]


def emulate_gemm_strided_batched(args, first, second, out, beta=0.0) -> None:
    """What cublasGemmStridedBatchedEx computes with these arguments (``first``/``second``: cuBLAS's A/B)."""
    first, second, flat_out = first.reshape(-1), second.reshape(-1), out.reshape(-1)
    m, n, k = args["m"], args["n"], args["k"]
    r, c = np.meshgrid(np.arange(m), np.arange(n), indexing="ij")
    for i in range(args.get("batch", 1)):
        a = _operand(first, i * args.get("stride_a", 0), args["lda"], args["transa"] == 1, m, k)
        b = _operand(second, i * args.get("stride_b", 0), args["ldb"], args["transb"] == 1, k, n)
        pos = i * args.get("stride_c", 0) + r + c * args["ldc"]
        # cuBLAS reads C only when beta != 0 (C may hold garbage, e.g. NaN, otherwise)
        flat_out[pos] = a @ b + (beta * flat_out[pos] if beta else 0.0)


def emulate_gemm(args, first, second, out, beta=0.0) -> None:
    """What cublasGemmEx computes with these arguments."""
    emulate_gemm_strided_batched(args, first, second, out, beta)
