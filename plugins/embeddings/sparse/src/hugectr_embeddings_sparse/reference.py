"""NumPy twins of ``kernels.cu``: same names, same arguments, same effect.

The hash-table twins replay the CUDA open-addressing table one key at a time (readable, slow; used
by the twin tests). The NumPy backend of the embedding itself uses the vectorised
``hash_table.HostHashTable`` instead; ``gather_combine`` and ``segmented_reduce`` below are what
the NumPy backend runs.
"""
from __future__ import annotations

import numpy as np

EMPTY_KEY = np.uint64(0xFFFFFFFFFFFFFFFF)
_MASK64 = (1 << 64) - 1


def mix64(key: int) -> int:
    """MurmurHash3's fmix64, as in kernels.cu."""
    key ^= key >> 33
    key = (key * 0xFF51AFD7ED558CCD) & _MASK64
    key ^= key >> 33
    key = (key * 0xC4CEB9FE1A85EC53) & _MASK64
    key ^= key >> 33
    return key


def _probe(slot_keys, key: int):
    """Slots visited for ``key``, in linear-probing order."""
    n_slots = slot_keys.size
    h = mix64(key) & (n_slots - 1)
    for _ in range(n_slots):
        yield h
        h = (h + 1) & (n_slots - 1)


def hash_insert_or_find(slot_keys, slot_rows, row_keys, counter, keys, max_rows):
    """Rows of ``keys``; absent keys are inserted and take the next row of ``counter`` (-2 past max_rows)."""
    rows = np.empty(keys.size, np.int64)
    for i, key in enumerate(int(k) for k in keys.astype(np.uint64)):
        rows[i] = -3
        for h in _probe(slot_keys, key):
            if slot_keys[h] == EMPTY_KEY:
                slot_keys[h] = key
                r = int(counter[0])
                counter[0] += 1
                slot_rows[h] = r if r < max_rows else -2
                if r < max_rows:
                    row_keys[r] = key
                rows[i] = slot_rows[h]
                break
            if int(slot_keys[h]) == key:
                rows[i] = slot_rows[h]
                break
    return rows, slot_keys, slot_rows, row_keys, counter


def hash_find(slot_keys, slot_rows, keys):
    """Rows of ``keys``, -1 where absent."""
    rows = np.full(keys.size, -1, np.int64)
    for i, key in enumerate(int(k) for k in keys.astype(np.uint64)):
        for h in _probe(slot_keys, key):
            if slot_keys[h] == EMPTY_KEY:
                break
            if int(slot_keys[h]) == key:
                rows[i] = max(int(slot_rows[h]), -1)
                break
    return rows


def sum_dtype(dtype):
    """The dtype sums are taken in: float32 for a float16 output or gradient (rounded once at the end)."""
    return np.dtype(np.float32) if np.dtype(dtype) == np.float16 else np.dtype(dtype)


def gather_combine(table, rows, row_offsets, mean, out_sv):
    """``out_sv[s] = sum (or mean) of table[rows[k]]`` over the keys k of segment s; rows < 0 add 0.
    A float16 ``out_sv`` gets the float32 result rounded once."""
    offsets = np.asarray(row_offsets, np.int64)
    counts = np.diff(offsets)
    seg = np.repeat(np.arange(counts.size), counts)
    present = rows[: seg.size] >= 0
    acc = sum_dtype(out_sv.dtype)
    vectors = np.where(present[:, None], table[np.where(present, rows[: seg.size], 0)], 0).astype(acc)
    total = np.zeros(out_sv.shape, acc)
    np.add.at(total, seg, vectors)
    if mean:
        total /= np.maximum(counts, 1).astype(acc)[:, None]
    out_sv[...] = total
    return out_sv


def segmented_reduce(top_grad_sv, seg_j, scale_j, starts_u, chunk_start_u=None):
    """``grad_uv[u] = sum_j top_grad_sv[seg_j[j]] * scale_j[j]`` over the run ``starts_u[u]:starts_u[u+1]``."""
    n_unique = starts_u.size - 1
    acc = sum_dtype(top_grad_sv.dtype)
    if n_unique == 0:
        return np.zeros((0, top_grad_sv.shape[1]), acc)
    scaled = top_grad_sv[seg_j].astype(acc) * scale_j[:, None].astype(acc)
    return np.add.reduceat(scaled, starts_u[:-1], axis=0)


def adam_lazy_update_rows(table, m, v, stamps, rows, grad_rows, lr, step, beta1, beta2, eps, inv_scaler):
    """Adam with ``Update_t.LazyGlobal`` on the unique ``rows`` touched at ``step`` (formats.md 3.5).

    Per element, with ``p = stamps`` (the step of the last touch, 1 before any) and ``k = step - p``
    skipped steps: first the weight catches up with the ``k`` steps of Global Adam it missed, in
    closed form with m and v frozen at their last values,
    ``w -= lr/(1-b1) * sqrt(1-b2^p)/(1-b1^p) * (1-b1^k) * m/(sqrt(v)+eps)``; then
    ``m = b1^k m + (1-b1) g``, ``v = b2^k v + (1-b2) g^2`` and ``p = step``. As in HugeCTR the current
    gradient moves the weight only at the next touch. Computed in the table's dtype (powf in float32).
    """
    dt = table.dtype.type
    b1, b2, eps_, lr_, inv = dt(beta1), dt(beta2), dt(eps), dt(lr), dt(inv_scaler)
    g = grad_rows.astype(table.dtype) * inv
    prev = stamps[rows]
    skipped = (np.int64(step) - prev).astype(table.dtype)
    b1_skipped = np.power(b1, skipped)
    alpha = (lr_ / (dt(1) - b1)) * np.sqrt(dt(1) - np.power(b2, prev.astype(table.dtype))) \
        / (dt(1) - np.power(b1, prev.astype(table.dtype))) * (dt(1) - b1_skipped)
    mi, vi = m[rows], v[rows]
    table[rows] = table[rows] - alpha * mi / (np.sqrt(vi) + eps_)
    m[rows] = b1_skipped * mi + (dt(1) - b1) * g
    v[rows] = np.power(b2, skipped) * vi + (dt(1) - b2) * g * g
    stamps[rows] = step
    return table, m, v, stamps



def chunk_plan(starts_u):
    """Twin of the CUDA side's chunking (first chunk of each unique row); the NumPy reductions need none."""
    chunks_u = (np.diff(starts_u) + 31) // 32
    return np.concatenate([[0], np.cumsum(chunks_u)]).astype(np.int64)


def reduce_and_sgd(top_grad_sv, seg_j, scale_j, starts_u, rows_u, table, lr_s, chunk_start_u=None):
    """``table[rows_u] -= lr_s * segmented_reduce(...)`` (the CUDA twin fuses the update into the reduction)."""
    if starts_u.size - 1:
        table[rows_u] -= table.dtype.type(lr_s) * segmented_reduce(top_grad_sv, seg_j, scale_j, starts_u)
    return table
