"""Helpers shared by optimizer plugins: argument checks for their CUDA launchers and the NumPy
row-update twin (gather rows, run the elementwise update, scatter back)."""
from __future__ import annotations

import numpy as np

from .errors import BackendError


def check_kernel_arrays(*arrays) -> None:
    """Fused optimizer kernels index flat memory: every array must be C-contiguous and of one dtype."""
    for a in arrays:
        if not a.flags.c_contiguous:
            raise BackendError("optimizer kernels need C-contiguous arrays; pass a contiguous buffer or slice")
        if a.dtype != arrays[0].dtype:
            raise BackendError(f"optimizer kernels need one dtype for weights, gradients and states; "
                               f"got {arrays[0].dtype} and {a.dtype}: cast the gradient first")


def rows_kernel_args(table, rows, grad_rows):
    """(rows int64, grad_rows in the table's dtype, row count, vector width) for a row-update kernel."""
    import cupy  # noqa: PLC0415 - only on the GPU path

    rows = cupy.ascontiguousarray(rows, dtype=cupy.int64)
    grad_rows = cupy.ascontiguousarray(grad_rows, dtype=table.dtype)
    vec = table.size // table.shape[0] if table.ndim > 1 else 1
    return rows, grad_rows, np.int64(rows.size), np.int64(vec)


def rows_update(dense_fn, table, states, rows, grad_rows, *scalars):
    """NumPy twin of a row kernel: apply ``dense_fn`` to ``table[rows]`` and the same rows of ``states``.

    Example:
        >>> t = np.zeros((3, 2)); rows_update(lambda w, g: w.__isub__(g), t, [], np.array([1]), np.ones((1, 2)))[0][1]
        array([-1., -1.])
    """
    sub_w = table[rows]
    sub_s = [s[rows] for s in states]
    dense_fn(sub_w, grad_rows, *sub_s, *scalars)
    table[rows] = sub_w
    for full, part in zip(states, sub_s):
        full[rows] = part
    return (table, *states)
