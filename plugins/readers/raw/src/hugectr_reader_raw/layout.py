"""Binary record layouts of the Raw family (formats.md 2.1 and 2.2) and their decoding into a Batch.

Axis letters: N records in a batch, L label_dim, D dense_dim, H keys per record (sum of hotness).

Example:
    >>> layout = RecordLayout(label_dim=1, label_dtype="<i4", dense_dim=2, dense_dtype="<f4",
    ...                       dense_log=False, key_dtype="<u4", hotness={"data1": (2, 1)})
    >>> layout.record_size
    24
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hugectr_core.contracts.reader import Batch, SparseBatch, static_row_offsets

KEY_DTYPES = {"uint32": "<u4", "int64": "<i8"}


@dataclass(frozen=True)
class RecordLayout:
    """One fixed-size record: label[L], dense[D], then every sparse input's keys, slot by slot.

    Args:
        label_dim: L, labels per record (cast to float32).
        label_dtype: on-disk label dtype.
        dense_dim: D, dense features per record.
        dense_dtype: on-disk dense dtype.
        dense_log: apply ``log(x + 1)`` to the dense values (integer dense on disk).
        key_dtype: on-disk (and output) key dtype.
        hotness: top_name -> keys per slot (static hotness), in the Input's sparse-param order.
    """

    label_dim: int
    label_dtype: str
    dense_dim: int
    dense_dtype: str
    dense_log: bool
    key_dtype: str
    hotness: dict

    @property
    def num_keys(self) -> int:
        return sum(sum(h) for h in self.hotness.values())

    @property
    def dtype(self) -> np.dtype:
        return np.dtype([("label", self.label_dtype, (self.label_dim,)),
                         ("dense", self.dense_dtype, (self.dense_dim,)),
                         ("keys", self.key_dtype, (self.num_keys,))])

    @property
    def record_size(self) -> int:
        return self.dtype.itemsize

    def decode(self, records: np.ndarray) -> Batch:
        """Turn N structured records into a Batch (float32 label/dense, CSR keys per sparse input).

        Every output array is one contiguous copy out of the records; row offsets are the shared,
        read-only ``static_row_offsets`` of each input's hotness (also set as ``static_hotness``).
        """
        n = len(records)
        label = records["label"].astype(np.float32).reshape(n, self.label_dim)
        dense = records["dense"].reshape(n, self.dense_dim)
        if self.dense_log:
            dense = np.log1p(dense.astype(np.float64)).astype(np.float32)
        else:
            dense = dense.astype(np.float32)  # a copy either way: the strided view becomes contiguous
        keys = records["keys"].reshape(n, self.num_keys)
        sparse, start = {}, 0
        for name, hot in self.hotness.items():
            width = sum(hot)
            # Records are sample-major and slot-major within a sample: exactly the CSR value order.
            values = np.array(keys[:, start:start + width], copy=True).reshape(-1)  # owned, contiguous
            sparse[name] = SparseBatch(row_offsets=static_row_offsets(hot, n), keys=values,
                                       static_hotness=tuple(hot))
            start += width
        return Batch(size=n, label=label, dense=dense, sparse=sparse)
