"""CuPy launchers of ``kernels.cu``; same names and arguments as the NumPy twins in ``reference.py``."""
from __future__ import annotations

import numpy as np

from hugectr_core.kernels import KernelModule

KERNELS = KernelModule("hugectr_embeddings_collection", [f"gather_concat<{t}>" for t in ("float", "double")])


def gather_concat(table, rows, row_offsets, hotness, out_bw):
    import cupy  # noqa: PLC0415 - only on the GPU path

    offsets = cupy.ascontiguousarray(row_offsets, dtype=cupy.int64)
    rows = cupy.ascontiguousarray(rows, dtype=cupy.int64)
    n_samples, ev = offsets.size - 1, table.shape[1]
    KERNELS.launch("gather_concat", table.dtype, n_samples * hotness * ev,
                   (table, rows, offsets, np.int64(n_samples), np.int64(hotness), np.int64(ev), out_bw))
    return out_bw
