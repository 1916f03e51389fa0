"""CuPy launchers of ``kernels.cu``; same names and arguments as the NumPy twins in ``reference.py``."""
from __future__ import annotations

import numpy as np

from hugectr_core.kernels import KernelModule

_KEY_TYPES = ("unsigned int", "long long")
_FLOAT_TYPES = ("float", "double")
KERNELS = KernelModule(
    "hugectr_embeddings_sparse",
    [f"hash_insert_or_find<{k}>" for k in _KEY_TYPES] + [f"hash_find<{k}>" for k in _KEY_TYPES]
    + [f"{n}<{t}>" for n in ("gather_combine", "segmented_reduce_chunks", "segmented_reduce_merge", "segmented_reduce_merge_sgd",
                                 "adam_lazy_update_rows") for t in _FLOAT_TYPES]
    + [f"{n}<{t}>" for n in ("gather_combine_f4", "segmented_reduce_chunks_f4") for t in ("float", "__half")]
    + ["segmented_reduce_merge_f4", "segmented_reduce_merge_sgd_f4", "init_new_rows"])
INIT_GRID = 1024  # blocks of init_new_rows: it strides over the new rows, a count only the device knows
VEC4_IO_DTYPES = (np.dtype(np.float32), np.dtype(np.float16))  # what the f4 kernels read as a gradient / write


def _vec4(*arrays) -> bool:
    """float32 with rows a multiple of 4 wide (and 16-byte aligned, as CuPy allocations are): use float4."""
    a = arrays[0]
    return a.dtype == np.float32 and a.shape[-1] % 4 == 0 and all(x.data.ptr % 16 == 0 for x in arrays)


def _vec4_io(io, *fp32_arrays) -> bool:
    """As ``_vec4`` for the float32 arrays, with ``io`` (the lookup output or top gradient) float32 or
    float16, its rows a multiple of 4 wide and 4 values (8 or 16 bytes) aligned."""
    return np.dtype(io.dtype) in VEC4_IO_DTYPES and io.shape[-1] % 4 == 0 \
        and io.data.ptr % (4 * io.dtype.itemsize) == 0 and _vec4(*fp32_arrays)


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
    if out_sv.dtype != table.dtype and not _vec4_io(out_sv, table):  # only the f4 kernel writes float16
        wide = cupy.empty(out_sv.shape, table.dtype)
        gather_combine(table, rows, offsets, mean, wide)
        out_sv[...] = wide
        return out_sv
    if _vec4_io(out_sv, table):
        KERNELS.launch("gather_combine_f4", out_sv.dtype, n_seg * vec // 4,
                       (table, rows, offsets, np.int64(n_seg), np.int64(vec // 4), np.int32(bool(mean)), out_sv))
        return out_sv
    KERNELS.launch("gather_combine", table.dtype, n_seg * vec,
                   (table, rows, offsets, np.int64(n_seg), np.int64(vec), np.int32(bool(mean)), out_sv))
    return out_sv


SEGMENT_CHUNK = 32  # occurrences one thread sums in the first pass (see kernels.cu)


def chunk_plan(starts_u):
    """First chunk of each unique row: exclusive prefix sum of ceil(len_u / SEGMENT_CHUNK), length u + 1.
    Built with the backward plan in the training forward, so the backward itself is two kernels."""
    import cupy  # noqa: PLC0415

    starts_u = cupy.ascontiguousarray(starts_u, dtype=cupy.int64)
    chunks_u = (cupy.diff(starts_u) + SEGMENT_CHUNK - 1) // SEGMENT_CHUNK
    return cupy.concatenate([cupy.zeros(1, cupy.int64), cupy.cumsum(chunks_u)])


def sum_dtype(dtype):
    """The dtype the reductions accumulate and return in: float32 for float16 gradients."""
    return np.dtype(np.float32) if np.dtype(dtype) == np.float16 else np.dtype(dtype)


def _chunk_partials(top_grad_sv, seg_j, scale_j, starts_u, chunk_start_u, *more):
    """First pass: per-chunk partial sums. Returns (partial, chunk_start_u, n_unique, width, suffix, dtypes)."""
    import cupy  # noqa: PLC0415

    n_unique, vec = starts_u.size - 1, top_grad_sv.shape[1]
    acc = sum_dtype(top_grad_sv.dtype)
    starts_u = cupy.ascontiguousarray(starts_u, dtype=cupy.int64)
    chunk_start_u = chunk_plan(starts_u) if chunk_start_u is None else chunk_start_u
    max_chunks = n_unique + seg_j.size // SEGMENT_CHUNK  # sum of ceil(len/chunk) <= n_unique + n/chunk
    partial = cupy.empty((max_chunks, vec), acc)
    seg_j = cupy.ascontiguousarray(seg_j, dtype=cupy.int64)
    scale_j = cupy.ascontiguousarray(scale_j, dtype=acc)
    if _vec4_io(top_grad_sv, partial, *more):  # reads a float32 or float16 gradient in place
        width, suffix, dtypes, kernel = vec // 4, "_f4", (), ("segmented_reduce_chunks_f4", top_grad_sv.dtype)
    else:  # the scalar kernels are float/double: a float16 gradient is widened first
        top_grad_sv = top_grad_sv.astype(acc, copy=False)
        width, suffix, dtypes, kernel = vec, "", acc, ("segmented_reduce_chunks", acc)
    KERNELS.launch(*kernel, max_chunks * width,
                   (top_grad_sv, seg_j, scale_j, starts_u, chunk_start_u, np.int64(n_unique), np.int64(max_chunks),
                    np.int64(SEGMENT_CHUNK), np.int64(width), partial))
    return partial, chunk_start_u, n_unique, width, suffix, dtypes


def segmented_reduce(top_grad_sv, seg_j, scale_j, starts_u, chunk_start_u=None):
    """Two passes, no atomics: chunk partial sums, then a merge per unique row (skew-proof)."""
    import cupy  # noqa: PLC0415

    top_grad_sv = cupy.ascontiguousarray(top_grad_sv)
    grad_uv = cupy.empty((starts_u.size - 1, top_grad_sv.shape[1]), sum_dtype(top_grad_sv.dtype))
    if not grad_uv.shape[0]:
        return grad_uv
    partial, chunk_start_u, n_unique, width, suffix, dtypes = _chunk_partials(top_grad_sv, seg_j, scale_j,
                                                                              starts_u, chunk_start_u, grad_uv)
    KERNELS.launch("segmented_reduce_merge" + suffix, dtypes, n_unique * width,
                   (partial, chunk_start_u, np.int64(n_unique), np.int64(width), grad_uv))
    return grad_uv


def reduce_and_sgd(top_grad_sv, seg_j, scale_j, starts_u, rows_u, table, lr_s, chunk_start_u=None):
    """``table[rows_u] -= lr_s * segmented_reduce(...)`` with the update fused into the merge pass."""
    import cupy  # noqa: PLC0415

    top_grad_sv = cupy.ascontiguousarray(top_grad_sv)
    if starts_u.size - 1:
        partial, chunk_start_u, n_unique, width, suffix, dtypes = _chunk_partials(top_grad_sv, seg_j, scale_j,
                                                                                  starts_u, chunk_start_u, table)
        lr = np.float32(lr_s) if suffix else table.dtype.type(lr_s)
        KERNELS.launch("segmented_reduce_merge_sgd" + suffix, dtypes, n_unique * width,
                       (partial, chunk_start_u, np.int64(n_unique), np.int64(width),
                        cupy.ascontiguousarray(rows_u, dtype=cupy.int64), table, lr))
    return table


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


def init_new_rows(table, row_keys, counter_before, counter_after, seed, limit, limit_per_slot=None, row_slot=None):
    """Fill the rows given out between the two counter values (device scalars) from (seed, key): the
    twin of ``embedding.key_uniform`` on ``row_keys[before:after]``, without reading the counters."""
    import cupy  # noqa: PLC0415

    if table.dtype != np.float32 or not table.flags.c_contiguous:
        raise ValueError(f"init_new_rows: the table must be C-contiguous float32, got {table.dtype}")
    rows, vec = table.shape
    per_slot = limit_per_slot is not None
    null = np.uint64(0)  # an 8-byte null pointer argument
    slot_limits = cupy.ascontiguousarray(limit_per_slot, dtype=cupy.float64) if per_slot else null
    slots = row_slot if per_slot else null
    KERNELS.function("init_new_rows")((INIT_GRID,), (256,), (
        row_keys, counter_before, counter_after, np.int64(rows), np.int64(vec), np.uint64(seed & (2**64 - 1)),
        np.float64(limit), slot_limits, slots, table))
    return table
