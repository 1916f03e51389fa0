"""CuPy launchers of ``kernels.cu``; same names and arguments as the NumPy twins in ``reference.py``."""
from __future__ import annotations

import numpy as np

from hugectr_core.kernels import KernelModule

_KEY_TYPES = ("unsigned int", "long long")
_FLOAT_TYPES = ("float", "double")
KERNELS = KernelModule(
    "hugectr_embeddings_sparse",
    [f"hash_insert_or_find<{k}>" for k in _KEY_TYPES] + [f"hash_find<{k}>" for k in _KEY_TYPES]
    + [f"{n}<{t}>" for n in ("gather_combine", "segmented_reduce_chunks", "segmented_reduce_merge", "adam_lazy_update_rows") for t in _FLOAT_TYPES])


def _keys(keys):
    """Keys as uint32 or int64 (the two instantiated key types), contiguous."""
    import cupy  # noqa: PLC0415 - only on the GPU path

    dtype = keys.dtype if keys.dtype in (np.uint32, np.int64) else np.int64
    return cupy.ascontiguousarray(keys, dtype=dtype)


def hash_insert_or_find(slot_keys, slot_rows, row_keys, counter, keys, max_rows):
    import cupy  # noqa: PLC0415

    keys = _keys(keys)
    rows = cupy.empty(keys.size, cupy.int64)
    KERNELS.launch("hash_insert_or_find", keys.dtype, keys.size,
                   (slot_keys, slot_rows, row_keys, counter, keys, np.int64(keys.size),
                    np.int64(slot_keys.size), np.int64(max_rows), rows))
    return rows, slot_keys, slot_rows, row_keys, counter


def hash_find(slot_keys, slot_rows, keys):
    import cupy  # noqa: PLC0415

    keys = _keys(keys)
    rows = cupy.empty(keys.size, cupy.int64)
    KERNELS.launch("hash_find", keys.dtype, keys.size,
                   (slot_keys, slot_rows, keys, np.int64(keys.size), np.int64(slot_keys.size), rows))
    return rows


def gather_combine(table, rows, row_offsets, mean, out_sv):
    import cupy  # noqa: PLC0415

    offsets = cupy.ascontiguousarray(row_offsets, dtype=cupy.int64)
    rows = cupy.ascontiguousarray(rows, dtype=cupy.int64)
    n_seg, vec = out_sv.shape
    KERNELS.launch("gather_combine", table.dtype, n_seg * vec,
                   (table, rows, offsets, np.int64(n_seg), np.int64(vec), np.int32(bool(mean)), out_sv))
    return out_sv


SEGMENT_CHUNK = 32  # occurrences one thread sums in the first pass (see kernels.cu)


def segmented_reduce(top_grad_sv, seg_j, scale_j, starts_u):
    """Two passes, no atomics: chunk partial sums, then a merge per unique row (skew-proof)."""
    import cupy  # noqa: PLC0415

    top_grad_sv = cupy.ascontiguousarray(top_grad_sv)
    n_unique, vec = starts_u.size - 1, top_grad_sv.shape[1]
    grad_uv = cupy.empty((n_unique, vec), top_grad_sv.dtype)
    if not n_unique:
        return grad_uv
    starts_u = cupy.ascontiguousarray(starts_u, dtype=cupy.int64)
    chunks_u = (cupy.diff(starts_u) + SEGMENT_CHUNK - 1) // SEGMENT_CHUNK
    chunk_start_u = cupy.concatenate([cupy.zeros(1, cupy.int64), cupy.cumsum(chunks_u)])
    max_chunks = n_unique + seg_j.size // SEGMENT_CHUNK  # sum of ceil(len/chunk) <= n_unique + n/chunk
    partial = cupy.empty((max_chunks, vec), top_grad_sv.dtype)
    KERNELS.launch("segmented_reduce_chunks", top_grad_sv.dtype, max_chunks * vec,
                   (top_grad_sv, cupy.ascontiguousarray(seg_j, dtype=cupy.int64),
                    cupy.ascontiguousarray(scale_j, dtype=top_grad_sv.dtype), starts_u, chunk_start_u,
                    np.int64(n_unique), np.int64(max_chunks), np.int64(SEGMENT_CHUNK), np.int64(vec), partial))
    KERNELS.launch("segmented_reduce_merge", top_grad_sv.dtype, n_unique * vec,
                   (partial, chunk_start_u, np.int64(n_unique), np.int64(vec), grad_uv))
    return grad_uv


def adam_lazy_update_rows(table, m, v, stamps, rows, grad_rows, lr, step, beta1, beta2, eps, inv_scaler):
    import cupy  # noqa: PLC0415

    rows = cupy.ascontiguousarray(rows, dtype=cupy.int64)
    grad_rows = cupy.ascontiguousarray(grad_rows, dtype=table.dtype)
    n_unique, vec = rows.size, table.shape[1]
    if n_unique:
        t = table.dtype.type
        KERNELS.launch("adam_lazy_update_rows", table.dtype, n_unique * vec,
                       (table, m, v, stamps, rows, grad_rows, np.int64(n_unique), np.int64(vec), t(lr),
                        np.int64(step), t(beta1), t(beta2), t(eps), t(inv_scaler)))
    return table, m, v, stamps
