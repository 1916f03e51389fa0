"""NumPy twins of ``kernels.cu``: same names, same arguments, same effect (the NumPy backend runs these)."""
from __future__ import annotations

import numpy as np


def gather_concat(table, rows, row_offsets, hotness, out_bw):
    """``out_bw[b, p*ev:(p+1)*ev] = table[rows[offsets[b] + p]]`` for the p-th key of sample b; positions
    past the sample's key count, and rows < 0 (unseen keys at evaluation), give zeros."""
    offsets = np.asarray(row_offsets, np.int64)
    n_samples, ev = offsets.size - 1, table.shape[1]
    out = out_bw.reshape(n_samples, hotness, ev)
    out[...] = 0
    counts = np.diff(offsets)
    sample = np.repeat(np.arange(n_samples), counts)
    pos = np.arange(offsets[-1]) - offsets[:-1][sample]
    r = np.asarray(rows[: offsets[-1]], np.int64)
    keep = r >= 0
    out[sample[keep], pos[keep]] = table[r[keep]]
    return out_bw
